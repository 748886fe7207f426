"""Object 4, Connectivity Monitoring, on the agent: emulated from the board profile.

The bearer is the board's first transport that LwM2M has a code for (Ethernet, WLAN, Bluetooth;
Ethernet otherwise), the signal a fixed -60 dBm on radio bearers, the IP address the one the agent is
bound to. The datagrams themselves always travel over UDP/IP.

Hand-written on the aiocoap-free LwM2M core, as every provider is (see ``objects.base``).
"""

from __future__ import annotations

import contextlib
import ipaddress
from urllib.parse import urlsplit

from tinymlaas.agent.objects.base import ObjectProvider
from tinymlaas.catalog.board import Board
from tinymlaas.lwm2m.core import CONNECTIVITY_MONITORING, Path, Value

__all__ = ["ConnectivityProvider", "bind_host_for"]

# LwM2M Network Bearer codes (Object 4 resource 0) for the transports a board profile lists.
_BEARERS = {"ethernet": 41, "wifi": 21, "ble": 22, "802.15.4": 23, "thread": 23}
_RADIO_BEARERS = frozenset({21, 22, 23})
_EMULATED_SIGNAL_DBM = -60


def bind_host_for(server_uri: str) -> str:
    """Loopback when the server is on this host (nothing else can reach it then), every address otherwise."""
    host = urlsplit(server_uri).hostname or ""
    if host == "localhost":
        return "127.0.0.1"
    with contextlib.suppress(ValueError):
        address = ipaddress.ip_address(host)
        if address.is_loopback:
            return str(address)
    return "::"


class ConnectivityProvider(ObjectProvider):
    """``/4/0`` for a board whose agent listens on ``host``."""

    definition = CONNECTIVITY_MONITORING

    def __init__(self, board: Board, host: str) -> None:
        self._bearers = [_BEARERS[name] for name in board.transports if name in _BEARERS] or [41]
        self._host = host

    def values(self) -> dict[Path, Value]:
        bearer = self._bearers[0]
        values: dict[Path, Value] = {
            Path(4, 0, 0): bearer,
            Path(4, 0, 2): _EMULATED_SIGNAL_DBM if bearer in _RADIO_BEARERS else 0,
            Path(4, 0, 4, 0): self._host,
        }
        values.update({Path(4, 0, 1, index): code for index, code in enumerate(self._bearers)})
        return values
