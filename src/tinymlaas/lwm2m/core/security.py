"""How a device proves who it is: the LwM2M Security object (0) for one server, and endpoint names.

LwM2M keeps a client's credentials in object 0 (TS Core 1.1 §E.1): the server URI (resource 0), the
security mode (2), the PSK identity (3) and the secret key (5). The device agent keeps exactly those in
its state directory, written once when the device is provisioned; the server keeps the same key bound to
the endpoint name, so a DTLS handshake under that identity proves the endpoint. Object 0 is never served
to a management server (§E.1: only the bootstrap server may touch it), so it is a file here, not a
resource the agent answers Reads for.

Endpoint names are checked like dataset names: they travel in URIs, logs and HTML, so a name is one
unreserved path segment without control characters or markup.
"""

from __future__ import annotations

import json
import re
import secrets
import string
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from urllib.parse import urlsplit

from tinymlaas.errors import InvalidInput
from tinymlaas.files import write_atomic

__all__ = [
    "CREDENTIALS_FILE",
    "PSK_BYTES",
    "DeviceCredentials",
    "SecurityMode",
    "check_endpoint_name",
    "new_psk",
]

CREDENTIALS_FILE = "security.json"  # in the agent's state directory, 0600
# A key is 16 characters from letters and digits (95 bits): 16 bytes is the longest PSK the DTLS stack
# (tinydtls) takes, and characters a person can type are what libcoap's ``-k`` accepts, so the text shown
# at provisioning is the key itself, with no second encoding to get wrong.
PSK_BYTES = 16
PSK_ALPHABET = string.ascii_letters + string.digits
_ENDPOINT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")  # URNs (urn:imei:...) too


class SecurityMode(IntEnum):
    """Resource 0/x/2, as the specification numbers the modes."""

    PSK = 0
    RPK = 1
    CERTIFICATE = 2
    NOSEC = 3


def check_endpoint_name(name: str) -> None:
    """InvalidInput unless ``name`` can name an LwM2M endpoint here."""
    if not _ENDPOINT_NAME.match(name):
        raise InvalidInput(
            f"endpoint name {name!r} must be 1-128 letters, digits, '_', '.', ':' or '-', "
            "starting with a letter or digit"
        )


def new_psk() -> bytes:
    """A fresh key, uniformly drawn from ``PSK_ALPHABET``."""
    return "".join(secrets.choice(PSK_ALPHABET) for _ in range(PSK_BYTES)).encode()


@dataclass(frozen=True)
class DeviceCredentials:
    """One Security object instance: the server a device talks to and how it proves itself there."""

    endpoint: str
    server_uri: str
    identity: str
    key: bytes
    mode: SecurityMode = SecurityMode.PSK

    def __post_init__(self) -> None:
        check_endpoint_name(self.endpoint)
        if self.mode is not SecurityMode.PSK:
            raise InvalidInput(f"security mode {self.mode.name} is not supported; devices use PSK")
        if urlsplit(self.server_uri).scheme != "coaps":
            raise InvalidInput(f"a PSK device talks to a coaps:// server, not {self.server_uri!r}")
        if not self.identity or len(self.identity.encode()) > 128:
            raise InvalidInput("a PSK identity is 1-128 bytes")
        if len(self.key) != PSK_BYTES or not self.key.isascii() or not self.key.decode().isprintable():
            raise InvalidInput(f"a PSK is {PSK_BYTES} printable ASCII characters")

    def to_json(self) -> bytes:
        """The file's content, keyed by the object 0 resources they are."""
        return json.dumps(
            {
                "endpoint": self.endpoint,
                "server_uri": self.server_uri,  # 0/x/0
                "security_mode": int(self.mode),  # 0/x/2
                "psk_identity": self.identity,  # 0/x/3
                "secret_key": self.key.decode(),  # 0/x/5
            },
            indent=2,
        ).encode()

    def save(self, state_dir: Path) -> Path:
        """Write the credentials into ``state_dir`` readable by its owner only; return the file."""
        state_dir = Path(state_dir)
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = state_dir / CREDENTIALS_FILE
        write_atomic(path, self.to_json(), mode=0o600)
        return path

    @classmethod
    def load(cls, state_dir: Path) -> DeviceCredentials | None:
        """The credentials provisioned into ``state_dir``; None when there are none."""
        path = Path(state_dir) / CREDENTIALS_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_bytes())
            return cls(
                endpoint=str(data["endpoint"]),
                server_uri=str(data["server_uri"]),
                identity=str(data["psk_identity"]),
                key=str(data["secret_key"]).encode(),
                mode=SecurityMode(int(data["security_mode"])),
            )
        except (ValueError, KeyError, TypeError, UnicodeError) as exc:
            raise InvalidInput(f"{path}: not a device's security credentials ({exc})") from None
