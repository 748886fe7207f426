"""CoAP over UDP on aiocoap, behind a small surface of frozen request and response values.

This is the one module of the product that imports aiocoap (docs/ARCHITECTURE.md, Layers), so the
LwM2M server and the device agent stay testable without sockets and the CoAP stack can be swapped in one
place. aiocoap stops at CoAP; the LwM2M layer above it is written by hand because no maintained Python
LwM2M server library exists.

One ``CoapEndpoint`` is both a server and a client on the same UDP socket. LwM2M needs that: a device
registers from the socket it serves on, and the server reaches the device at the address the registration
came from, so both directions must share one port (NAT bindings included).

Security is DTLS 1.2 with pre-shared keys (LwM2M's PSK mode), aiocoap's tinydtls transports. A server
endpoint (``bind_secure``) answers coaps:// handshakes, looks each PSK identity up through a callback and
hands every request on with ``peer``, the endpoint name that identity is bound to; a client endpoint
(``connect_secure``) keeps one DTLS session to its server and serves the server's requests over it. The
server reaches a device over the session the device opened, as LwM2M asks (the device is behind NAT, it
speaks first); aiocoap's DTLS server refuses to send on such a session unless told the session is its
own, which ``_DtlsServerInterface`` does, and it tracks sessions without a bound, which its socket pool
adds.

Block-wise transfer (RFC 7959): ``request`` reassembles a block-wise response (aiocoap's client).
``request_block`` asks for one block by number instead, so a client that kept the blocks it has can
resume a transfer after a restart, and may ask for several blocks at once (RFC 7959 §2.4). Those block
requests are non-confirmable and retransmitted here, on a timer from the peer's measured round trips
(``rtt.RttEstimator``): aiocoap keeps one confirmable exchange per peer outstanding (NSTART 1, its
backlog) and retransmits on fixed timers. A server cuts a large GET response into the block asked for
on every request, without aiocoap's per-client cache of the whole response, so any client may ask for
any block at any time (RFC 7959 §2.4) and no response is held in memory per client; Size2 tells the
total size.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiocoap
from aiocoap import error as coap_error
from aiocoap import resource
from aiocoap.blockwise import Block1Spool, ContinueException, IncompleteException, _extract_block_key
from aiocoap.credentials import DTLS
from aiocoap.numbers import COAP_PORT, COAPS_PORT
from aiocoap.numbers.codes import Code
from aiocoap.numbers.types import Type
from aiocoap.optiontypes import BlockOption
from aiocoap.transports.tinydtls import (
    DTLS_CLOCK_OFFSET,
    DTLS_EVENT_CONNECTED,
    DTLS_TICKS_PER_SECOND,
    LEVEL_NOALERT,
    DTLSClientConnection,
    MessageInterfaceTinyDTLS,
)
from aiocoap.transports.tinydtls_server import (
    MessageInterfaceTinyDTLSServer,
    _AddressDTLS,
    _DatagramServerSocketSimpleDTLS,
)
from aiocoap.transports.udp6 import MessageInterfaceUDP6

from tinymlaas.errors import InvalidInput, TinymlaasError
from tinymlaas.lwm2m.transport.rtt import RttEstimator, backoff

__all__ = [
    "DEFAULT_BLOCK_SZX",
    "DEFAULT_TIMEOUT",
    "BlockStats",
    "CoapBlock",
    "CoapEndpoint",
    "CoapRequest",
    "CoapResponse",
    "Handler",
    "NotificationCallback",
    "Observation",
    "PeerUnreachable",
    "PskLookup",
    "same_origin",
]

_log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 30.0  # seconds for a whole exchange, every block of a block-wise transfer included
DEFAULT_BLOCK_SZX = 6  # RFC 7959 size exponent: blocks of 2 ** (6 + 4) = 1024 bytes
_CODE = re.compile(r"([0-7])\.([0-3][0-9])")
_METHODS = frozenset({"GET", "POST", "PUT", "DELETE", "FETCH", "PATCH", "IPATCH"})

# aiocoap binds its sockets with SO_REUSEPORT unless this says otherwise (it reads it at each bind). On
# Linux a socket bound to port 0 with SO_REUSEPORT may then get a port that another SO_REUSEPORT socket of
# the same user already has, and the kernel splits the incoming datagrams between the two: one agent of a
# spawned fleet, or of another process, silently gets another's replies. A fixed port (5683) could be
# bound twice the same way. Every endpoint here needs its port to itself.
os.environ.setdefault("AIOCOAP_REUSE_PORT", "0")


class _QuietOnCleanClose(logging.Filter):
    """Drops two aiocoap warnings that report normal events, not problems.

    "Unhandled alert level 1 code 0" is a peer's close_notify (RFC 6347: a DTLS session ending
    cleanly, as every agent's does when it stops); the "shutdown sequence mismatch" is an error for a
    session that aiocoap had already shut, reported once more on the way out.
    """

    _BENIGN = ("Unhandled alert level 1 code 0", "Internal shutdown sequence mismatch")

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self._BENIGN)


for _name in ("coap-server", "coap-client"):
    logging.getLogger(_name).addFilter(_QuietOnCleanClose())


class PeerUnreachable(TinymlaasError):
    """The peer did not answer in time or the network refused the datagram (ICMP unreachable)."""

    http_status = 504
    coap_code = "5.04"
    title = "Peer unreachable"


@dataclass(frozen=True)
class CoapRequest:
    """A request as a handler sees it: decoded options, the whole payload, and who sent it.

    ``remote`` is the peer's base URI (``coap://127.0.0.1:56830``): a server that stores it can send
    requests back to the peer by appending a path. ``peer`` is who the security layer proved the sender
    to be (the LwM2M endpoint name a DTLS PSK identity is bound to); None over NoSec, where the remote
    address is all there is and anyone can claim it.
    """

    method: str
    path: tuple[str, ...]
    query: tuple[str, ...] = ()
    payload: bytes = b""
    content_format: int | None = None
    accept: int | None = None
    observe: int | None = None
    remote: str = ""
    peer: str | None = None

    @property
    def uri_path(self) -> str:
        """The path as one string, ``/3/0`` for ``("3", "0")``, as LwM2M paths are written."""
        return "/" + "/".join(self.path)


@dataclass(frozen=True)
class CoapResponse:
    """A response code in dotted form (``"2.05"``), its payload and the options LwM2M uses."""

    code: str
    payload: bytes = b""
    content_format: int | None = None
    location_path: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _parse_code(self.code)

    @property
    def success(self) -> bool:
        return self.code.startswith("2.")

    @property
    def diagnostic(self) -> str:
        """The payload read as the diagnostic text CoAP error responses carry."""
        return self.payload.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class CoapBlock:
    """One Block2 block of a representation as the peer sent it (RFC 7959 §2.2).

    The peer may answer with smaller blocks than asked for (``szx`` is what it used); a peer that does
    not do block-wise transfer sends the whole representation, which arrives as block 0 with ``more``
    False. An error response carries no block: ``num`` 0, ``more`` False.
    """

    response: CoapResponse
    num: int
    more: bool
    szx: int
    total: int | None = None  # the whole representation's size when the peer sent Size2

    @property
    def size(self) -> int:
        """Bytes per block at this size exponent; every block but the last is this long."""
        return 1 << (self.szx + 4)

    @property
    def offset(self) -> int:
        """Where this block's payload starts in the whole representation."""
        return self.num * self.size


Handler = Callable[[CoapRequest], Awaitable[CoapResponse]]
NotificationCallback = Callable[[CoapResponse], Awaitable[None] | None]
# A PSK identity as the client sent it -> (the key, the endpoint name it is bound to), None when unknown.
PskLookup = Callable[[str], tuple[bytes, str] | None]

MAX_DTLS_PEERS = 10_000  # DTLS sessions a server keeps; past it the least recently heard one is closed
MAX_BODY_BYTES = (1 << 20) + (64 << 10)  # a reassembled Block1 request: one sample upload and its framing
MAX_TRANSFERS_PER_PEER = 4  # Block1 transfers one peer may have half-sent at once
BLOCK1_TIMEOUT_S = 30.0  # a half-sent transfer with no block for this long is dropped, its memory freed
MAX_RTT_PEERS = 1024  # peers whose round trips a client endpoint remembers; the oldest is forgotten past it
# A DTLS client's session that answered nothing for this long while a block request waited is taken for
# dead, whatever the request's own timeout (see ``request_block``).
SILENT_SESSION_S = 30.0
# A DTLS client's session given up is shut this long after (its exchanges under way end by then).
RETIRED_SESSION_S = 60.0
# A server takes every device's datagrams on one socket. Linux's default receive buffer (rmem_default,
# about 200 KB: some 100 datagrams of a package block, with the kernel's overhead per datagram) fills
# in a burst while the event loop is busy, and the kernel then drops what arrives, silently (UDP
# RcvbufErrors in /proc/net/snmp); measured: 18,452 such drops in one 1,000-device rollout. The kernel
# caps the request at net.core.rmem_max, which a large fleet's host should raise.
SERVER_RECEIVE_BUFFER_BYTES = 4 << 20


@dataclass
class BlockStats:
    """Block requests an endpoint sent (first transmissions and retransmissions) and blocks answered."""

    requests: int = 0
    retransmissions: int = 0
    answered: int = 0


def _origin(uri: str) -> tuple[str, str, int]:
    parts = urlsplit(uri)
    default = COAPS_PORT if parts.scheme == "coaps" else COAP_PORT
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def _peer_key(uri: str) -> str:
    scheme, host, port = _origin(uri)
    return f"{scheme}://{host}:{port}"


def same_origin(a: str, b: str) -> bool:
    """True when two CoAP URIs name the same scheme, host and port (default ports filled in)."""
    return _origin(a) == _origin(b)


class _BodyTooLarge(coap_error.ConstructionRenderableError):
    code = Code.REQUEST_ENTITY_TOO_LARGE


class _TooManyTransfers(coap_error.ConstructionRenderableError):
    code = Code.TOO_MANY_REQUESTS


@dataclass
class _Transfer:
    first: aiocoap.Message
    data: bytearray
    peer: Any
    seen: float


class _BoundedBlock1Spool(Block1Spool):
    """aiocoap's Block1 reassembly (RFC 7959 §2.5) with the bounds it lacks.

    aiocoap keeps every half-sent request for 93 s whatever its size and however many one peer opens,
    and copies the whole body on each block. Here a transfer stops with 4.13 as soon as its declared
    (Size1) or received size passes ``max_bytes``, a peer has at most ``max_per_peer`` transfers open
    (4.29 beyond), one silent for ``timeout`` seconds is dropped, and blocks append in place.
    """

    def __init__(self, max_bytes: int, max_per_peer: int, timeout: float) -> None:
        self._max_bytes = max_bytes
        self._max_per_peer = max_per_peer
        self._timeout = timeout
        self._transfers: dict[Any, _Transfer] = {}

    def _expire(self, now: float) -> None:
        stale = [key for key, transfer in self._transfers.items() if now - transfer.seen > self._timeout]
        for key in stale:
            del self._transfers[key]

    def _too_large(self, size: int) -> _BodyTooLarge:
        return _BodyTooLarge(f"a request body is at most {self._max_bytes} bytes; this one is {size} or more")

    def feed_and_take(self, req: aiocoap.Message) -> aiocoap.Message:
        block = req.opt.block1
        if block is None:
            return req
        now = time.monotonic()
        self._expire(now)
        key = _extract_block_key(req)
        if block.block_number == 0:
            declared = req.opt.size1 or 0
            if max(declared, len(req.payload)) > self._max_bytes:
                self._transfers.pop(key, None)
                raise self._too_large(max(declared, len(req.payload)))
            peer = req.remote.blockwise_key
            self._transfers.pop(key, None)
            if sum(transfer.peer == peer for transfer in self._transfers.values()) >= self._max_per_peer:
                raise _TooManyTransfers(f"at most {self._max_per_peer} block-wise requests at once per peer")
            transfer = _Transfer(req, bytearray(req.payload), peer, now)
            self._transfers[key] = transfer
        else:
            found = self._transfers.get(key)
            if found is None or block.start != len(found.data):
                raise IncompleteException from None
            transfer = found
            if len(transfer.data) + len(req.payload) > self._max_bytes:
                del self._transfers[key]
                raise self._too_large(len(transfer.data) + len(req.payload))
            transfer.data += req.payload
            transfer.seen = now
        if block.more:
            raise ContinueException(block)
        del self._transfers[key]
        assembled = transfer.first.copy(payload=bytes(transfer.data))
        assembled.opt.block1 = block  # the response acknowledges the last block, as aiocoap's does
        return assembled

    def open_transfers(self) -> int:
        """How many half-sent requests are held now."""
        return len(self._transfers)


class _PskStore:
    """The object aiocoap's DTLS server asks for keys: ``find_dtls_psk(identity) -> (key, claims)``.

    The claim is the endpoint name, which aiocoap then reports as the session's authenticated claim.
    """

    def __init__(self, lookup: PskLookup) -> None:
        self._lookup = lookup

    def find_dtls_psk(self, identity: bytes) -> tuple[bytes, str]:
        try:
            name = identity.decode("utf-8")
        except UnicodeDecodeError:
            raise KeyError(identity) from None
        try:
            found = self._lookup(name)
        except Exception:
            _log.exception("DTLS PSK lookup for %r failed", name[:64])
            raise KeyError(name) from None
        if found is None:
            _log.info("DTLS handshake under unknown PSK identity %r refused", name[:64])
            raise KeyError(name)
        return found


_CHANGE_CIPHER_SPEC, _DTLS_HANDSHAKE, _APPLICATION_DATA = 20, 22, 23  # record content types (RFC 6347 §4.1)
_CLIENT_HELLO, _CLIENT_KEY_EXCHANGE = 1, 16  # handshake message types
RETRANSMIT_FLOOR_S = 0.05  # the shortest wait between two looks at tinydtls's handshake retransmissions


async def _retransmit(dtls_socket: Any) -> None:
    """Let tinydtls resend lost handshake flights when they are due, until it has none pending.

    aiocoap sleeps until the time tinydtls names, but tinydtls counts in coarser steps and names a time
    that is already past until its own clock moves on, so aiocoap's loop spins at full speed for up to
    a second at each lost flight (a server under 10 % loss spent a core on it). The floor keeps the
    waits short enough for a handshake and the loop off the CPU.
    """
    while True:
        when = dtls_socket.checkRetransmit() / DTLS_TICKS_PER_SECOND
        if when == 0:
            return
        await asyncio.sleep(max(when - (time.time() - DTLS_CLOCK_OFFSET), RETRANSMIT_FLOOR_S))


def _dispatched(read: Callable[[Any, bytes], int], sender: Any, data: bytes) -> int:
    """Hand a decrypted record on through aiocoap's ``read``, never letting an exception back into
    tinydtls.

    tinydtls calls this from C in the middle of a record, and an exception there cannot unwind: the
    record is cut short and the session left inconsistent. Measured in a 1,000-device rollout: an
    answer that arrived in the one event-loop pass between a timed-out request and aiocoap's clean-up
    of it raised InvalidStateError there (see ``_drop``), and sessions then went one-way. Such a late
    answer is dropped here like any answer to a request given up; anything else is logged and dropped.
    """
    try:
        return read(sender, data)
    except asyncio.InvalidStateError:
        _log.debug("dropped an answer to a request given up a moment before")
    except Exception as exc:  # e.g. a record still arriving while the endpoint shuts down
        _log.warning("dropped a DTLS record that aiocoap could not take: %r", exc)
    return len(data)


def _opens_epoch_0_handshake(datagram: bytes, message_type: int) -> bool:
    """Whether ``datagram`` opens with an epoch-0 handshake record holding a ``message_type`` message."""
    return (
        len(datagram) > 13
        and datagram[0] == _DTLS_HANDSHAKE
        and datagram[3:5] == b"\x00\x00"
        and datagram[13] == message_type
    )


def _cookie_hello(datagram: bytes) -> bytes | None:
    """The handshake message of a datagram that opens with a ClientHello carrying a cookie (message_seq
    above 0, RFC 6347 §4.2.1), None for any other datagram."""
    if len(datagram) < 25 or datagram[0] != _DTLS_HANDSHAKE or datagram[3:5] != b"\x00\x00":
        return None  # not an epoch-0 handshake record
    if datagram[13] != _CLIENT_HELLO or datagram[17:19] == b"\x00\x00":
        return None
    return datagram[13 : 13 + int.from_bytes(datagram[11:13], "big")]


class _DtlsPeer(_AddressDTLS):
    """One device's session on the server, retransmitting as ``_retransmit`` does.

    A device whose server flight (ServerHello .. ServerHelloDone) was lost sends its ClientHello again.
    tinydtls answers it with a second flight on top of its own retransmission of the first, and the
    device's Finished then never verified: the handshake hung until the device gave it up (seen on an
    emulated link that lost one ServerHello). So a repeat of the cookie'd ClientHello this peer already
    took is not handed to tinydtls; tinydtls's own timer resends the flight.
    """

    hello = b""  # the last cookie'd ClientHello handed to tinydtls
    # The server's last flight (ChangeCipherSpec, Finished) as sent, until the device shows it has it.
    last_flight: tuple[bytes, ...] = ()

    def repeated_hello(self, datagram: bytes) -> bool:
        """Whether ``datagram`` repeats the ClientHello last taken, remembering it when it is new."""
        message = _cookie_hello(datagram)
        if message is None:
            return False
        if message == self.hello:
            return True
        self.hello = message
        return False

    def resent_last_flight(self, datagram: bytes) -> bool:
        """Send the last flight again when ``datagram`` repeats the device's own last flight.

        A device that did not get the server's ChangeCipherSpec and Finished sends its last flight
        again, and RFC 6347 §4.2.4 has the server answer with its own. tinydtls, its handshake done,
        ignores the repeat, and the device's handshake hung until its request timed out twice: 21 s on
        a link that lost that one flight, where a lost ClientKeyExchange cost 2 s. The flight is kept
        until the device sends data under the new keys or begins another handshake.
        """
        if not self.last_flight:
            return False
        if datagram[:1] == bytes((_APPLICATION_DATA,)) or _opens_epoch_0_handshake(datagram, _CLIENT_HELLO):
            self.last_flight = ()
            return False
        if not _opens_epoch_0_handshake(datagram, _CLIENT_KEY_EXCHANGE):
            return False
        for part in self.last_flight:
            self._underlying_address.send(part)
        return True

    async def _run_retransmissions(self) -> None:
        await _retransmit(self._dtls_socket)

    def _read(self, sender: Any, data: bytes) -> int:
        return _dispatched(super()._read, sender, data)

    def _write(self, recipient: Any, data: bytes) -> int:
        if data[:1] == bytes((_CHANGE_CIPHER_SPEC,)):
            self.last_flight = (data,)
        elif self.last_flight and data[0] == _DTLS_HANDSHAKE and data[3:5] != b"\x00\x00":
            self.last_flight = (*self.last_flight, data)  # the Finished, under the new epoch
        return int(super()._write(recipient, data))


class _DtlsSession(DTLSClientConnection):
    """A client's session to its server, retransmitting as ``_retransmit`` does; ``connected_at`` is the
    monotonic time its handshake completed (0 before), ``heard_at`` the last time any datagram came
    from the server on it (a handshake flight or a record)."""

    connected_at = 0.0
    heard_at = 0.0

    class SingleConnection(DTLSClientConnection.SingleConnection):
        def datagram_received(self, data: bytes, addr: Any) -> None:
            parent = self.parent()
            if parent is not None:
                parent.heard_at = time.monotonic()
            super().datagram_received(data, addr)

    @property
    def connected(self) -> bool:
        return self._queue is None  # aiocoap hands the queue over once the handshake is done

    def _event(self, level: int, code: int) -> None:
        if (level, code) == (LEVEL_NOALERT, DTLS_EVENT_CONNECTED):
            self.connected_at = time.monotonic()
        super()._event(level, code)

    def _read(self, sender: Any, data: bytes) -> int:
        return _dispatched(super()._read, sender, data)

    def shutdown(self) -> None:
        """aiocoap's, also for a session whose socket is still being opened: it then stops opening
        (aiocoap's own would fail on the retransmission task not made yet)."""
        if not hasattr(self, "_retransmission_task"):
            self._remove_from_pool()
            self._startup.cancel()
            return
        super().shutdown()

    async def _run_retransmissions(self) -> None:
        await _retransmit(self._dtls_socket)


class _DtlsClientInterface(MessageInterfaceTinyDTLS):
    """aiocoap's DTLS client transport, opening ``_DtlsSession``s (its pool logic, as it has it)."""

    def _connection_for_address(self, host: str, port: int, pskId: bytes, psk: bytes) -> Any:  # noqa: N803
        key = (host, port, pskId)
        found = self._pool.get(key)
        if found is None:
            found = _DtlsSession(host, port, pskId, psk, self)
            self._pool[key] = found
        return found


class _DtlsServerSocket(_DatagramServerSocketSimpleDTLS):
    """aiocoap's DTLS server socket, with the bound on sessions its pool defines but never applies."""

    _Address = _DtlsPeer

    def datagram_received(self, data: bytes, sockaddr: Any) -> None:
        peer = self._connections.get(sockaddr)
        if peer is None:
            self._maybe_purge_sockets()
        elif peer.repeated_hello(data) or peer.resent_last_flight(data):
            return
        super().datagram_received(data, sockaddr)


class _DtlsServerInterface(MessageInterfaceTinyDTLSServer):
    """aiocoap's DTLS server on exactly the port given, able to send requests on its own sessions."""

    _default_port = COAP_PORT  # aiocoap adds (COAPS_PORT - this) to the port it is given
    _serversocket = _DtlsServerSocket

    async def recognize_remote(self, remote: Any) -> bool:
        return isinstance(remote, _AddressDTLS) and remote._protocol is self._pool

    def session(self, host: str, port: int) -> Any:
        """The live DTLS session with ``host:port``, None when there is none."""
        connections = self._pool._connections
        return connections.get((host, port)) or connections.get((host, port, 0, 0))

    @property
    def port(self) -> int:
        return int(self._pool._transport.get_extra_info("socket").getsockname()[1])


def _parse_code(text: str) -> Code:
    match = _CODE.fullmatch(text)
    if match is None:
        raise InvalidInput(f"CoAP code {text!r} is not 'c.dd'")
    return Code((int(match.group(1)) << 5) | int(match.group(2)))


def _normalize_path(path: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(path, str):
        return tuple(part for part in path.split("/") if part)
    return tuple(path)


def _to_response(message: aiocoap.Message) -> CoapResponse:
    return CoapResponse(
        code=message.code.dotted,
        payload=bytes(message.payload),
        content_format=None if message.opt.content_format is None else int(message.opt.content_format),
        location_path=tuple(message.opt.location_path),
    )


def _to_message(response: CoapResponse) -> aiocoap.Message:
    message = aiocoap.Message(code=_parse_code(response.code), payload=response.payload)
    if response.content_format is not None:
        message.opt.content_format = response.content_format
    if response.location_path:
        message.opt.location_path = response.location_path
    return message


def _to_request(message: aiocoap.Message) -> CoapRequest:
    claims = getattr(message.remote, "authenticated_claims", None) or ()
    peer = next((claim for claim in claims if isinstance(claim, str)), None)
    return CoapRequest(
        method=str(message.code.name),
        path=tuple(message.opt.uri_path),
        query=tuple(message.opt.uri_query),
        payload=bytes(message.payload),
        content_format=None if message.opt.content_format is None else int(message.opt.content_format),
        accept=None if message.opt.accept is None else int(message.opt.accept),
        observe=message.opt.observe,
        remote=message.remote.uri_base,
        peer=peer,
    )


async def _not_found(request: CoapRequest) -> CoapResponse:
    return CoapResponse("4.04", f"{request.uri_path}: this endpoint serves nothing".encode())


class _Dispatcher(resource.ObservableResource, resource.PathCapable):
    """The one aiocoap resource: every path goes to the handler; GET with Observe 0 may be observed.

    PathCapable makes aiocoap hand over the full Uri-Path instead of looking up a resource tree, so
    routing stays in plain Python where the server and agent can test it without aiocoap.
    """

    def __init__(self, handler: Handler, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        super().__init__()
        self._handler = handler
        self._block1 = _BoundedBlock1Spool(max_body_bytes, MAX_TRANSFERS_PER_PEER, BLOCK1_TIMEOUT_S)
        self.observers: dict[tuple[str, ...], set[Any]] = {}

    async def add_observation(self, request: aiocoap.Message, serverobservation: Any) -> None:
        if request.code != Code.GET:
            # Accepted and withdrawn at once: aiocoap then sends the answer as a plain response.
            serverobservation.accept(lambda: None)
            serverobservation.deregister()
            return
        path = tuple(request.opt.uri_path)
        observers = self.observers.setdefault(path, set())
        observers.add(serverobservation)

        def forget() -> None:
            observers.discard(serverobservation)
            if not observers and self.observers.get(path) is observers:
                del self.observers[path]

        serverobservation.accept(forget)

    async def needs_blockwise_assembly(self, request: aiocoap.Message) -> bool:
        """GETs are cut into blocks by ``render``, statelessly; other methods reassemble Block1."""
        return bool(request.code != Code.GET)

    async def render(self, request: aiocoap.Message) -> aiocoap.Message:
        if request.code == Code.GET:
            return _block_of(await self._render(request), request)
        return await self._render(request)  # aiocoap reassembled its Block1 blocks already

    async def _render(self, request: aiocoap.Message) -> aiocoap.Message:
        coap_request = _to_request(request)
        try:
            response = await self._handler(coap_request)
        except TinymlaasError as exc:
            response = CoapResponse(exc.coap_code, exc.detail.encode())
        except Exception:
            _log.exception("CoAP handler failed on %s %s", coap_request.method, coap_request.uri_path)
            response = CoapResponse("5.00", b"internal server error")
        return _to_message(response)


def _block_of(response: aiocoap.Message, request: aiocoap.Message) -> aiocoap.Message:
    """The Block2 block of ``response`` that ``request`` asked for (block 0 when it asked for none), or
    the response whole when it fits; Size2 gives the whole size. A block past the end is 4.00."""
    asked = request.opt.block2
    limit = request.remote.maximum_payload_size
    if len(response.payload) <= (limit if asked is None else asked.size):
        return response
    if asked is None:
        asked = BlockOption.BlockwiseTuple(0, False, request.remote.maximum_block_size_exp)
    szx = min(asked.size_exponent, 6)  # no BERT over UDP
    size = 1 << (szx + 4)
    start = asked.block_number * size
    if start >= len(response.payload):
        raise coap_error.BadRequest(f"block {asked.block_number} of {size} bytes is past the end")
    # Built afresh rather than by aiocoap's _extract_block, which deep-copies the whole response
    # (options and all) for every block.
    block = aiocoap.Message(code=response.code, payload=response.payload[start : start + size])
    block.opt.content_format = response.opt.content_format
    block.opt.block2 = BlockOption.BlockwiseTuple(
        asked.block_number, start + size < len(response.payload), szx
    )
    block.opt.size2 = len(response.payload)
    return block


class Observation:
    """A client-side observation: the first response, then notifications until cancelled.

    Cancelling is reactive (RFC 7641 §3.6): no callback runs after ``cancel``, aiocoap forgets the token
    (lazily: one more notification may still be swallowed), and the peer's next notification is answered
    with a Reset, which ends the observation on the peer's side too.
    """

    def __init__(self, request: Any, response: CoapResponse, on_notification: NotificationCallback) -> None:
        self._request = request
        self.response = response
        self._on_notification = on_notification
        self._task: asyncio.Task[None] | None = None
        if request.observation is not None and response.success:
            self._task = asyncio.create_task(self._run(), name=f"CoAP observation {id(self):#x}")

    async def _run(self) -> None:
        try:
            async for message in self._request.observation:
                try:
                    result = self._on_notification(_to_response(message))
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    _log.exception("observation callback failed")
        except coap_error.Error as exc:
            _log.info("observation ended: %s", exc)

    def add_done_callback(self, callback: Callable[[Observation], None]) -> None:
        """Call ``callback(self)`` once no more notifications can arrive."""
        if self._task is None:
            callback(self)
        else:
            self._task.add_done_callback(lambda _task: callback(self))

    @property
    def active(self) -> bool:
        """True while notifications may still arrive (the peer accepted and nobody cancelled)."""
        return self._task is not None and not self._task.done()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        observation = self._request.observation
        if observation is not None and not observation.cancelled:
            observation.cancel()


class CoapEndpoint:
    """One UDP socket that serves a handler and sends requests; create it with ``bind``.

    Observable resources: a GET with Observe 0 whose answer is 2.xx registers an observer for its path,
    whatever the path. ``notify(path)`` then renders the path again through the handler (as a GET with
    Observe 0, exactly like the first answer) and sends the result to each observer of that path. A
    handler answering non-2.xx ends the observation; a peer's Reset or deregistration ends it too.
    Notifications are not split into blocks, so observed representations should fit one datagram.
    """

    def __init__(
        self,
        context: aiocoap.Context,
        dispatcher: _Dispatcher,
        host: str,
        port: int,
        *,
        dtls_server: _DtlsServerInterface | None = None,
        dtls_client: MessageInterfaceTinyDTLS | None = None,
        nosec_port: int | None = None,
    ) -> None:
        self._context = context
        self._dispatcher = dispatcher
        self._host = host
        self._port = port
        self._scheme = "coap" if dtls_server is None and dtls_client is None else "coaps"
        self._dtls_server = dtls_server
        self._nosec_port = nosec_port
        self._dtls_client = dtls_client
        self._observations: set[Observation] = set()
        # A client's DTLS session to its server lives only while something holds it (aiocoap keeps it
        # weakly); holding it here keeps the address the server knows this device by.
        self._server_session: Any = None
        self._answered_at = 0.0  # monotonic time of the last answer to a request of this endpoint
        self._rtt: dict[str, RttEstimator] = {}
        self._resolved: dict[str, Any] = {}  # a peer's address as aiocoap resolved it, plain UDP only
        self._retired: dict[Any, asyncio.TimerHandle] = {}  # sessions given up, each shut once retired
        self.block_stats = BlockStats()

    @classmethod
    async def bind(
        cls, host: str = "127.0.0.1", port: int = 0, handler: Handler | None = None
    ) -> CoapEndpoint:
        """Listen on ``host:port`` without security (port 0 picks a free one); no handler: all 4.04."""
        dispatcher = _Dispatcher(handler or _not_found)
        context = await aiocoap.Context.create_server_context(
            dispatcher, bind=(host, port), transports=["udp6"]
        )
        sock = _udp_socket(context)
        _enlarge_receive_buffer(sock)
        return cls(context, dispatcher, host, int(sock.getsockname()[1]))

    @classmethod
    async def bind_secure(
        cls,
        host: str,
        port: int,
        handler: Handler,
        psk_lookup: PskLookup,
        *,
        nosec_port: int | None = None,
        max_peers: int = MAX_DTLS_PEERS,
    ) -> CoapEndpoint:
        """Serve coaps:// (DTLS-PSK) on ``host:port``, and plain coap:// on ``nosec_port`` if given.

        aiocoap builds its contexts from transport names, and a name gives its stock DTLS server; this
        assembles the context from the transports themselves (aiocoap's own way inside
        ``create_server_context``) so the server is ``_DtlsServerInterface``.
        """
        dispatcher = _Dispatcher(handler)
        loop = asyncio.get_running_loop()
        context = aiocoap.Context(loop=loop, serversite=dispatcher, loggername="coap-server")
        if nosec_port is not None:
            await context._append_tokenmanaged_messagemanaged_transport(
                lambda manager: MessageInterfaceUDP6.create_server_transport_endpoint(
                    manager, log=context.log, loop=loop, bind=(host, nosec_port), multicast=[]
                )
            )
        servers: list[_DtlsServerInterface] = []

        async def dtls(manager: Any) -> _DtlsServerInterface:
            server = await _DtlsServerInterface.create_server(
                (host, port), manager, log=context.log, loop=loop, server_credentials=_PskStore(psk_lookup)
            )
            server._pool.max_sockets = max_peers
            servers.append(server)
            return server

        await context._append_tokenmanaged_messagemanaged_transport(dtls)
        bound_nosec = None
        if nosec_port is not None:
            sock = _udp_socket(context)
            _enlarge_receive_buffer(sock)
            bound_nosec = int(sock.getsockname()[1])
        _enlarge_receive_buffer(servers[0]._pool._transport.get_extra_info("socket"))
        return cls(
            context,
            dispatcher,
            host,
            servers[0].port,
            dtls_server=servers[0],
            nosec_port=bound_nosec,
        )

    @classmethod
    async def connect_secure(
        cls, server_uri: str, identity: str, key: bytes, handler: Handler
    ) -> CoapEndpoint:
        """A client of the coaps:// server at ``server_uri`` under a PSK, serving its requests too.

        There is no listening socket: the only way in is the DTLS session this endpoint opens to the
        server, so nothing but the server holding the same key can ask this endpoint anything.
        """
        scheme, host, port = _origin(server_uri)
        if scheme != "coaps" or not host:
            raise InvalidInput(f"a DTLS client needs a coaps://host[:port] server, not {server_uri!r}")
        dispatcher = _Dispatcher(handler)
        loop = asyncio.get_running_loop()
        context = aiocoap.Context(loop=loop, serversite=dispatcher, loggername="coap-client")
        clients: list[MessageInterfaceTinyDTLS] = []

        async def dtls(manager: Any) -> MessageInterfaceTinyDTLS:
            client = await _DtlsClientInterface.create_client_transport_endpoint(
                manager, log=context.log, loop=loop
            )
            clients.append(client)
            return client

        await context._append_tokenmanaged_messagemanaged_transport(dtls)
        netloc = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        context.client_credentials[f"coaps://{netloc}/*"] = DTLS(psk=key, client_identity=identity.encode())
        return cls(context, dispatcher, host, 0, dtls_client=clients[0])

    @property
    def port(self) -> int:
        return self._port

    @property
    def uri(self) -> str:
        """``coap://host:port`` (``coaps://`` when secured) of this endpoint, for peers on its address."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{self._scheme}://{host}:{self._port}"

    @property
    def nosec_uri(self) -> str | None:
        """The plain coap:// address a secured server also answers on, None when it does not."""
        if self._nosec_port is None:
            return None
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"coap://{host}:{self._nosec_port}"

    def _route(self, message: aiocoap.Message, uri: str) -> None:
        """Send a server's request to a device over the DTLS session the device opened."""
        if self._dtls_server is None:
            return
        scheme, host, port = _origin(uri)
        if scheme != "coaps":
            return
        session = self._dtls_server.session(host, port)
        if session is None:
            raise PeerUnreachable(f"{uri}: no DTLS session with this peer (it opens one when it registers)")
        message.remote = session

    def _hold(self, answer: aiocoap.Message) -> None:
        if self._dtls_client is not None:
            self._server_session = answer.remote
        self._answered_at = time.monotonic()

    def _unreachable(self, detail: str, since: float) -> PeerUnreachable:
        """The error for a request unanswered since ``since`` (monotonic); a client whose session answered
        nothing since then also gives that DTLS session up.

        A server that restarted lost the session's keys and silently ignores its records, and a
        handshake that heard nothing back since the request began lost its first flight, or the server
        is gone, so the next request handshakes anew. A handshake the server sent a flight of since the
        request began is under way and is kept; tinydtls resends a flight lost after that (the server
        took a repeated ClientHello badly until ``_DtlsPeer`` kept it from tinydtls). Starting every
        handshake over (as this did before) gave a server that 4,000 agents registered with at once a
        new handshake from each of them every 10 s, and no more than 1,132 were ever online together.
        A session that answered other requests meanwhile (a download's blocks), or whose handshake
        completed meanwhile, is alive: the server holds its keys, and giving it up for one lost or late
        exchange would only add a handshake to a busy server. A connected session given up leaves
        aiocoap's pool at once and is shut ``RETIRED_SESSION_S`` later, so exchanges still under way on
        it end on their own.
        """
        if self._dtls_client is None:
            return PeerUnreachable(detail)
        sessions = list(self._dtls_client._pool.values())
        handshaken = max((session.connected_at for session in sessions), default=0.0)
        if max(self._answered_at, handshaken) < since:
            self._server_session = None
            for session in sessions:
                if session.connected:
                    session._remove_from_pool()
                    self._retire(session)
                elif session.heard_at < since:
                    session.shutdown()
        return PeerUnreachable(detail)

    def _retire(self, session: Any) -> None:
        """Shut a session given up once ``RETIRED_SESSION_S`` have passed: exchanges still under way on it
        end by then, and its socket is closed rather than held until the collector finds it."""

        def shut() -> None:
            del self._retired[session]
            session.shutdown()

        self._retired[session] = asyncio.get_running_loop().call_later(RETIRED_SESSION_S, shut)

    def _message(
        self,
        method: str,
        uri: str,
        payload: bytes,
        content_format: int | None,
        accept: int | None,
        query: Iterable[str],
    ) -> aiocoap.Message:
        name = method.upper()
        if name not in _METHODS:
            raise InvalidInput(f"CoAP method {method!r} is not one of {', '.join(sorted(_METHODS))}")
        message = aiocoap.Message(code=Code[name], uri=uri, payload=payload)
        if content_format is not None:
            message.opt.content_format = content_format
        if accept is not None:
            message.opt.accept = accept
        extra = tuple(query)
        if extra:
            message.opt.uri_query = (*message.opt.uri_query, *extra)
        return message

    async def request(
        self,
        method: str,
        uri: str,
        payload: bytes = b"",
        content_format: int | None = None,
        accept: int | None = None,
        query: Iterable[str] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> CoapResponse:
        """Send one request and return the (reassembled) response, whatever its code.

        ``query`` items are added to any query in ``uri``. PeerUnreachable when no answer comes within
        ``timeout`` seconds, which covers every block of a block-wise transfer.
        """
        message = self._message(method, uri, payload, content_format, accept, query)
        self._route(message, uri)
        since = time.monotonic()
        pending = self._context.request(message)
        try:
            answer = await asyncio.wait_for(pending.response, timeout)
        except TimeoutError:
            raise self._unreachable(
                f"{method.upper()} {uri}: no response within {timeout} s", since
            ) from None
        except coap_error.Error as exc:
            raise self._unreachable(f"{method.upper()} {uri}: {exc}", since) from None
        self._hold(answer)
        return _to_response(answer)

    async def request_block(
        self, uri: str, num: int, szx: int = DEFAULT_BLOCK_SZX, *, timeout: float = DEFAULT_TIMEOUT
    ) -> CoapBlock:
        """GET block ``num`` of ``uri`` at blocks of ``2 ** (szx + 4)`` bytes, and only that block.

        The request is non-confirmable (RFC 7252 §5.2.3), so several may be outstanding to one peer, and
        is sent again, under a new message ID and token, each time the peer's retransmission timeout
        passes without an answer (``RttEstimator``, backing off); every copy stays open and the first
        answer wins. PeerUnreachable when no answer comes within ``timeout`` seconds; any response code
        returns.

        A DTLS client also gives up after ``SILENT_SESSION_S`` in which nothing at all answered on its
        session, and the next request handshakes anew. Measured in a 1,000-device rollout under 10 %
        loss: now and then a session stayed one-way, the server taking the device's requests (its logs
        showed each registration Update arrive) while nothing it sent back reached the device. Waiting
        out a block's whole timeout (95 s for a download) on such a session held the download so long
        that the campaign runner failed the device for want of progress.
        """
        if num < 0 or not 0 <= szx <= 6:
            raise InvalidInput(f"Block2 number {num} and size exponent {szx}: need num >= 0 and szx 0..6")
        key = _peer_key(uri)
        estimator = self._estimator(key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        since = time.monotonic()
        wait = estimator.first_timeout()
        sent_at: dict[Any, float] = {}  # each copy (an aiocoap request) -> when that copy left
        try:
            while True:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise self._unreachable(f"GET {uri} block {num}: no response within {timeout} s", since)
                silence_left = SILENT_SESSION_S - self._silent_since(since)
                if silence_left <= 0:
                    raise self._unreachable(
                        f"GET {uri} block {num}: the DTLS session answered nothing "
                        f"for {SILENT_SESSION_S:g} s",
                        since,
                    )
                message = self._message("GET", uri, b"", None, None, ())
                message.mtype = Type.NON
                message.opt.block2 = BlockOption.BlockwiseTuple(num, False, szx)
                self._route(message, uri)
                known = self._resolved.get(key)
                if known is not None:
                    message.remote = known
                sent_at[self._context.request(message, handle_blockwise=False)] = loop.time()
                self.block_stats.requests += 1
                self.block_stats.retransmissions += len(sent_at) > 1
                waiting = [copy.response for copy in sent_at if not copy.response.done()]
                await asyncio.wait(
                    waiting, timeout=min(wait, remaining, silence_left), return_when=asyncio.FIRST_COMPLETED
                )
                answered = [
                    copy for copy in sent_at if copy.response.done() and not copy.response.exception()
                ]
                if answered:
                    first = answered[0]
                    answer = first.response.result()
                    break
                if all(copy.response.done() for copy in sent_at):
                    error = next(iter(sent_at)).response.exception()
                    raise self._unreachable(f"GET {uri} block {num}: {error}", since)
                wait = backoff(wait)
        finally:
            for copy in sent_at:
                _drop(copy)
        if answer.code.is_successful():
            # Only blocks teach the timer: a short error answer's round trip is no block's. The copy
            # answered is known by its token, so the sample is exact however many copies went out.
            estimator.answered(loop.time() - sent_at[first])
        self.block_stats.answered += 1
        self._hold(answer)
        if self._dtls_client is None and self._dtls_server is None:
            # The next requests skip aiocoap's name resolution, which runs in a thread pool and would let
            # block requests made in one order leave in another.
            self._resolved[key] = answer.remote
        block = answer.opt.block2
        total = answer.opt.size2
        if block is None:
            return CoapBlock(_to_response(answer), 0, False, szx, total)
        return CoapBlock(
            _to_response(answer), block.block_number, bool(block.more), block.size_exponent, total
        )

    def _silent_since(self, since: float) -> float:
        """Seconds a DTLS client's session has answered nothing, counted from no earlier than ``since``
        (monotonic); never for an endpoint that is not a DTLS client."""
        if self._dtls_client is None:
            return -math.inf
        return time.monotonic() - max(since, self._answered_at)

    def _estimator(self, key: str) -> RttEstimator:
        """The round-trip estimator for the peer ``key`` names, made when first asked for."""
        found = self._rtt.pop(key, None)
        if found is None:
            found = RttEstimator(time.monotonic)
            while len(self._rtt) >= MAX_RTT_PEERS:
                forgotten = next(iter(self._rtt))
                del self._rtt[forgotten]
                self._resolved.pop(forgotten, None)
        self._rtt[key] = found  # most recently used last
        return found

    def rto(self, uri: str) -> float:
        """The retransmission timeout block requests to the peer ``uri`` names start with now."""
        return self._estimator(_peer_key(uri)).rto()

    async def observe(
        self,
        uri: str,
        on_notification: NotificationCallback,
        *,
        accept: int | None = None,
        query: Iterable[str] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> Observation:
        """GET with Observe 0; ``Observation.response`` is the first answer.

        ``on_notification`` (plain or async) gets each later notification, in order, never the first
        answer. If the peer answers without accepting the observation (an error code, or no Observe
        option), the returned Observation is inactive from the start.
        """
        message = self._message("GET", uri, b"", None, accept, query)
        message.opt.observe = 0
        self._route(message, uri)
        since = time.monotonic()
        pending = self._context.request(message)
        try:
            answer = await asyncio.wait_for(pending.response, timeout)
        except TimeoutError:
            pending.observation.cancel()
            raise self._unreachable(f"observe {uri}: no response within {timeout} s", since) from None
        except coap_error.Error as exc:
            raise self._unreachable(f"observe {uri}: {exc}", since) from None
        observation = Observation(pending, _to_response(answer), on_notification)
        if observation.active:
            self._observations.add(observation)
            observation.add_done_callback(self._observations.discard)
        return observation

    def notify(self, path: str | Iterable[str]) -> int:
        """Send the current representation of ``path`` to its observers; return how many there are."""
        observers = list(self._dispatcher.observers.get(_normalize_path(path), ()))
        for observer in observers:
            observer.trigger()
        return len(observers)

    def observer_count(self, path: str | Iterable[str]) -> int:
        """How many peers observe ``path`` now, e.g. to skip sampling a value nobody watches."""
        return len(self._dispatcher.observers.get(_normalize_path(path), ()))

    async def close(self) -> None:
        """Cancel this endpoint's observations and release the socket."""
        for observation in list(self._observations):
            observation.cancel()
        self._observations.clear()
        self._server_session = None
        for session, timer in list(self._retired.items()):
            timer.cancel()
            session.shutdown()
        self._retired.clear()
        await self._context.shutdown()


def _drop(request: Any) -> None:
    """Give up an aiocoap request still waiting for its answer, at once.

    aiocoap stops listening for the answer in a done-callback of the cancelled future, which runs one
    event-loop pass later; an answer arriving in between finds the future cancelled, and the
    InvalidStateError then surfaces inside the transport's receive path (over DTLS, inside tinydtls,
    for every record of that pass). So the callback is run here, now; aiocoap's own call later finds
    nothing left to do.
    """
    if request.response.cancel():
        request._response_cancellation_handler(request.response)


def _udp_socket(context: aiocoap.Context) -> socket.socket:
    """The plain UDP socket of the context, which aiocoap does not expose (its port, for port 0)."""
    for interface in context.request_interfaces:
        messages = getattr(getattr(interface, "token_interface", None), "message_interface", None)
        transport = getattr(messages, "transport", None)
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is not None:
            return sock
    raise RuntimeError("aiocoap's UDP transport exposes no socket; cannot tell the bound port")


def _enlarge_receive_buffer(sock: socket.socket) -> None:
    """Ask for ``SERVER_RECEIVE_BUFFER_BYTES`` of receive buffer; the kernel may give less (rmem_max)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SERVER_RECEIVE_BUFFER_BYTES)
    except OSError as exc:
        _log.warning("could not enlarge the UDP receive buffer: %s", exc)
        return
    granted = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux reports it doubled
    if granted < SERVER_RECEIVE_BUFFER_BYTES:
        _log.info(
            "UDP receive buffer: %d bytes granted of %d asked for (raise net.core.rmem_max for more)",
            granted,
            SERVER_RECEIVE_BUFFER_BYTES,
        )
