"""Ed25519 keys that sign model package manifests.

The server holds one private key; every agent is provisioned with its public half and trusts nothing
else, so a package is only as trustworthy as this key file. Hence the private key is written with mode
0600 and atomically: a crash never leaves a truncated key that would lock every device out of updates.

On disk, in the key directory:

- ``server_ed25519.pem`` — the private key, PKCS#8 PEM, unencrypted, mode 0600.
- ``server_ed25519.pub`` — the public key as 64 lowercase hex characters and a newline: short enough
  to paste into an agent's provisioning, and what ``load_public_key`` reads back.
- ``package_sequences.json`` — the last package sequence issued per model line (``issue_sequence``),
  beside the key because together they decide which packages devices accept; and its lock file.
"""

from __future__ import annotations

import binascii
import contextlib
import fcntl
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from tinymlaas.errors import InvalidInput
from tinymlaas.files import make_private_dir, write_atomic, write_json_atomic

__all__ = [
    "PRIVATE_KEY_NAME",
    "PUBLIC_KEY_NAME",
    "PUBLIC_KEY_SIZE",
    "SEQUENCES_NAME",
    "SIGNATURE_SIZE",
    "SigningKey",
    "issue_sequence",
    "load_or_create_signing_key",
    "load_public_key",
    "verify_signature",
]

PRIVATE_KEY_NAME = "server_ed25519.pem"
PUBLIC_KEY_NAME = "server_ed25519.pub"
PUBLIC_KEY_SIZE = 32  # bytes, raw Ed25519 public key
SIGNATURE_SIZE = 64  # bytes, raw Ed25519 signature
SEQUENCES_NAME = "package_sequences.json"
_SEQUENCES_LOCK_NAME = "package_sequences.lock"


@dataclass(frozen=True)
class SigningKey:
    """The server's private key; kept out of ``repr`` so it never lands in a log line."""

    private_key: Ed25519PrivateKey = field(repr=False)

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        """Read an unencrypted PKCS#8 PEM; anything else is refused rather than guessed at."""
        try:
            key = serialization.load_pem_private_key(pem, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as error:
            raise InvalidInput(f"not an unencrypted PEM private key: {error}") from error
        if not isinstance(key, Ed25519PrivateKey):
            raise InvalidInput(f"expected an Ed25519 private key, got {type(key).__name__}")
        return cls(key)

    def to_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def sign(self, data: bytes) -> bytes:
        """A 64-byte Ed25519 signature over ``data``."""
        return self.private_key.sign(data)

    def public_key_bytes(self) -> bytes:
        """The raw 32-byte public key: the form agents are provisioned with."""
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )


def load_or_create_signing_key(directory: Path) -> SigningKey:
    """The server's key from ``directory``, generated on first use.

    An existing private key is never replaced: every provisioned agent depends on it. The public key
    file is derived from it and rewritten when missing or stale.
    """
    directory = Path(directory)
    make_private_dir(directory)
    private_path = directory / PRIVATE_KEY_NAME
    if private_path.exists():
        key = SigningKey.from_pem(private_path.read_bytes())
    else:
        key = SigningKey.generate()
        write_atomic(private_path, key.to_pem(), mode=0o600)
    public_text = key.public_key_bytes().hex() + "\n"
    public_path = directory / PUBLIC_KEY_NAME
    if not public_path.exists() or public_path.read_text(errors="replace") != public_text:
        write_atomic(public_path, public_text.encode(), mode=0o644)
    return key


def load_public_key(source: Path | bytes) -> bytes:
    """The raw 32-byte public key from a file (``Path``) or its contents (``bytes``).

    Accepts the ``.pub`` file's hex form, a SubjectPublicKeyInfo PEM, or the 32 raw bytes, so an agent
    can be provisioned from whatever the operator has at hand.
    """
    if isinstance(source, str):
        raise TypeError("pass a Path to read a key file, or bytes holding the key itself")
    data = Path(source).read_bytes() if isinstance(source, os.PathLike) else bytes(source)
    stripped = data.strip()
    if stripped.startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(stripped)
        except (ValueError, UnsupportedAlgorithm) as error:
            raise InvalidInput(f"not a PEM public key: {error}") from error
        if not isinstance(key, Ed25519PublicKey):
            raise InvalidInput(f"expected an Ed25519 public key, got {type(key).__name__}")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if len(stripped) == 2 * PUBLIC_KEY_SIZE:
        with contextlib.suppress(binascii.Error, ValueError):
            return bytes.fromhex(stripped.decode("ascii"))
    if len(data) == PUBLIC_KEY_SIZE:
        return data
    raise InvalidInput(
        f"not an Ed25519 public key: expected {2 * PUBLIC_KEY_SIZE} hex characters, a PEM block or "
        f"{PUBLIC_KEY_SIZE} raw bytes, got {len(data)} bytes"
    )


def verify_signature(public_key_raw: bytes, data: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is a valid Ed25519 signature of ``data`` under ``public_key_raw``.

    A forged or malformed signature is an ordinary ``False``; a public key that is not 32 bytes is a
    provisioning mistake and raises ``InvalidInput`` instead of quietly rejecting every package.
    """
    if len(public_key_raw) != PUBLIC_KEY_SIZE:
        raise InvalidInput(f"an Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, got {len(public_key_raw)}")
    try:
        public_key = Ed25519PublicKey.from_public_bytes(bytes(public_key_raw))
    except ValueError as error:
        raise InvalidInput(f"not an Ed25519 public key: {error}") from error
    if len(signature) != SIGNATURE_SIZE:
        return False
    try:
        public_key.verify(bytes(signature), bytes(data))
    except InvalidSignature:
        return False
    return True


def issue_sequence(directory: Path, line: str, *, clock: Callable[[], int] = time.time_ns) -> int:
    """The sequence for the next package of model line ``line``: higher than any issued for it before.

    It is the signing time in microseconds, raised to one above the last sequence issued for the line
    when the clock reads lower (it stepped back, or two signings fell in one microsecond). The time
    keeps sequences growing even if ``directory`` is restored from an old backup; the record keeps
    them growing when the clock does not. A lock file serialises signings in every process and thread
    that shares ``directory``, so two of them never issue the same number.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / SEQUENCES_NAME
    with open(directory / _SEQUENCES_LOCK_NAME, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        issued = _issued_sequences(path)
        sequence = max(clock() // 1000, issued.get(line, 0) + 1)
        write_json_atomic(path, {**issued, line: sequence})
    return sequence


def _issued_sequences(path: Path) -> dict[str, int]:
    if not path.exists():
        return {}
    try:
        issued = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise InvalidInput(
            f"package sequence record {path} cannot be read ({error}); removing it lets sequences "
            "follow the signing clock alone"
        ) from error
    if not isinstance(issued, dict) or not all(
        isinstance(value, int) and not isinstance(value, bool) for value in issued.values()
    ):
        raise InvalidInput(
            f"package sequence record {path} is not an object of model line -> integer; removing it "
            "lets sequences follow the signing clock alone"
        )
    return issued
