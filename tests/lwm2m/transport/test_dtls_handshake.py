"""A DTLS client's handshake after an unanswered request: kept while the server answers it, started
over when nothing came back; a server's last flight lost is sent again."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from tinymlaas.lwm2m.linkemu import PROFILES, UdpLinkEmulator
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse, PeerUnreachable

KEY = b"0123456789abcdef"
CHANGE_CIPHER_SPEC, HANDSHAKE = 20, 22  # DTLS record content types
CLIENT_HELLO, SERVER_HELLO = 1, 2  # handshake message types
RANDOM = slice(13 + 12 + 2, 13 + 12 + 2 + 32)  # a ClientHello's random in its datagram (RFC 5246 §7.4.1.2)


def handshake_message(datagram: bytes) -> tuple[int, int] | None:
    """(message type, message_seq) of the handshake message a datagram's first record opens with (RFC
    6347 §4.1 and §4.2.2: a 13-byte record header, then type, length, message_seq), None for others."""
    if len(datagram) < 19 or datagram[0] != HANDSHAKE or datagram[3:5] != b"\x00\x00":  # epoch 0
        return None
    return datagram[13], int.from_bytes(datagram[17:19], "big")


async def answer(request: CoapRequest) -> CoapResponse:
    return CoapResponse("2.05", b"here")


@dataclass
class Rig:
    """A DTLS client reaching a server through an emulated link; ``begun`` holds the random of each
    handshake the client began: each begins with a ClientHello of message_seq 0 and a random of its own,
    which tinydtls's retransmissions of that ClientHello repeat."""

    client: CoapEndpoint
    link: UdpLinkEmulator
    uri: str
    begun: set[bytes]

    def drop(self, downlink: Callable[[bytes], bool] | None = None) -> None:
        """Lose what ``downlink`` picks from now on (nothing when None), watching the handshakes begun."""

        def watch_uplink(datagram: bytes) -> bool:
            if handshake_message(datagram) == (CLIENT_HELLO, 0):
                self.begun.add(datagram[RANDOM])  # after the 12-byte message header and the client_version
            return False

        self.link.drop(uplink=watch_uplink, downlink=downlink)


@contextlib.asynccontextmanager
async def rig() -> AsyncIterator[Rig]:
    server = await CoapEndpoint.bind_secure(
        "127.0.0.1", 0, answer, lambda identity: (KEY, identity) if identity == "dev" else None
    )
    link = await UdpLinkEmulator.start(("127.0.0.1", server.port), PROFILES["loopback"])
    client = await CoapEndpoint.connect_secure(f"coaps://127.0.0.1:{link.port}", "dev", KEY, answer)
    try:
        yield Rig(client, link, f"coaps://127.0.0.1:{link.port}/thing", set())
    finally:
        await client.close()
        link.close()
        await server.close()


async def exchange(drop_downlink: Callable[[bytes], bool]) -> int:
    """One request over a link that loses what ``drop_downlink`` picks, given up after 0.5 s; then the
    link is whole and a second request is made. Returns how many handshakes the client began."""
    async with rig() as linked:
        linked.drop(drop_downlink)
        with pytest.raises(PeerUnreachable):
            await linked.client.request("GET", linked.uri, timeout=0.5)
        linked.drop()
        assert (await linked.client.request("GET", linked.uri, timeout=10)).payload == b"here"
        return len(linked.begun)


def test_a_handshake_the_server_answers_is_kept_when_a_request_times_out() -> None:
    """The server's HelloVerifyRequest arrives, its ServerHello flight is lost: the handshake is under
    way, and tinydtls's retransmission completes it for the next request without a new handshake."""
    lost: list[bytes] = []

    def first_server_hello(datagram: bytes) -> bool:
        if not lost and (handshake_message(datagram) or (None,))[0] == SERVER_HELLO:
            lost.append(datagram)
            return True
        return False

    assert asyncio.run(asyncio.wait_for(exchange(first_server_hello), 30)) == 1
    assert lost  # the flight was indeed lost


def test_a_handshake_that_heard_nothing_is_started_over_when_a_request_times_out() -> None:
    """Nothing comes back while the request waits: the handshake is taken for lost, and the next
    request begins a new one rather than wait out tinydtls's backing-off retransmissions."""
    assert asyncio.run(asyncio.wait_for(exchange(lambda datagram: True), 30)) == 2


def test_the_servers_lost_last_flight_is_sent_again_when_the_client_repeats_its_own() -> None:
    """The server's ChangeCipherSpec and Finished are lost once: the client's tinydtls repeats its last
    flight, the server answers it with its own again (RFC 6347 §4.2.4), and the first request is
    answered on the one handshake. Before, the repeat went unanswered and the request timed out."""
    lost: list[bytes] = []

    def first_last_flight(datagram: bytes) -> bool:
        if not lost and datagram[0] == CHANGE_CIPHER_SPEC:
            lost.append(datagram)
            return True
        return False

    async def scenario() -> int:
        async with rig() as linked:
            linked.drop(first_last_flight)
            assert (await linked.client.request("GET", linked.uri, timeout=8)).payload == b"here"
            assert (await linked.client.request("GET", linked.uri, timeout=8)).payload == b"here"
            return len(linked.begun)

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == 1
    assert lost
