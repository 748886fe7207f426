"""The CoAP transport against itself on 127.0.0.1: requests, error mapping, block-wise, observe/notify."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse, PeerUnreachable

PACKAGE = bytes(range(256)) * 256  # 64 KiB, far more than one UDP datagram or one Block2 block


def run(test: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(test(), 15))


async def eventually(check: Callable[[], bool], timeout: float = 3.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.02)


class Recorder:
    def __init__(self) -> None:
        self.requests: list[CoapRequest] = []
        self.counter = 0
        self.release = asyncio.Event()

    async def handle(self, request: CoapRequest) -> CoapResponse:
        self.requests.append(request)
        match request.path:
            case ("package",):
                return CoapResponse("2.05", PACKAGE, 42)
            case ("upload",):
                return CoapResponse("2.04", str(len(request.payload)).encode())
            case ("missing",):
                raise NotFound("no such thing here")
            case ("bad",):
                raise InvalidInput("value out of range")
            case ("crash",):
                raise RuntimeError("a bug")
            case ("slow",):
                await self.release.wait()
                return CoapResponse("2.05")
            case ("counter",):
                return CoapResponse("2.05", str(self.counter).encode(), 0)
            case ("created",):
                return CoapResponse("2.01", location_path=("rd", "abc"))
        return CoapResponse("2.05", b"echo", 0)


async def pair() -> tuple[Recorder, CoapEndpoint, CoapEndpoint]:
    recorder = Recorder()
    server = await CoapEndpoint.bind("127.0.0.1", 0, recorder.handle)
    client = await CoapEndpoint.bind("127.0.0.1", 0)
    return recorder, server, client


def test_request_carries_method_path_query_options_and_remote() -> None:
    async def scenario() -> None:
        recorder, server, client = await pair()
        try:
            response = await client.request(
                "post",
                server.uri + "/a/b?x=1",
                b"hi",
                content_format=0,
                accept=110,
                query=("y=2",),
                timeout=5,
            )
            assert response == CoapResponse("2.05", b"echo", 0)
            request = recorder.requests[-1]
            assert request.method == "POST"
            assert request.path == ("a", "b")
            assert request.uri_path == "/a/b"
            assert request.query == ("x=1", "y=2")
            assert request.payload == b"hi"
            assert (request.content_format, request.accept, request.observe) == (0, 110, None)
            assert request.remote == client.uri
            created = await client.request("POST", server.uri + "/created", timeout=5)
            assert created.code == "2.01" and created.location_path == ("rd", "abc")
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_errors_map_to_coap_codes_with_diagnostic_payload() -> None:
    async def scenario() -> None:
        _, server, client = await pair()
        try:
            missing = await client.request("GET", server.uri + "/missing", timeout=5)
            assert (missing.code, missing.diagnostic) == ("4.04", "no such thing here")
            assert not missing.success
            bad = await client.request("GET", server.uri + "/bad", timeout=5)
            assert (bad.code, bad.diagnostic) == ("4.00", "value out of range")
            crash = await client.request("GET", server.uri + "/crash", timeout=5)
            assert crash.code == "5.00"
            assert "a bug" not in crash.diagnostic
            nothing = await server.request("GET", client.uri + "/x", timeout=5)
            assert nothing.code == "4.04"
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_large_payloads_go_block_wise_both_ways() -> None:
    async def scenario() -> None:
        recorder, server, client = await pair()
        try:
            response = await client.request("GET", server.uri + "/package", timeout=10)
            assert response.code == "2.05"
            assert response.content_format == 42
            assert response.payload == PACKAGE
            upload = await client.request("POST", server.uri + "/upload", PACKAGE, timeout=10)
            assert upload.payload == str(len(PACKAGE)).encode()
            assert recorder.requests[-1].payload == PACKAGE
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_silent_or_absent_peer_raises_peer_unreachable() -> None:
    async def scenario() -> None:
        recorder, server, client = await pair()
        gone = await CoapEndpoint.bind("127.0.0.1", 0)
        await gone.close()
        try:
            with pytest.raises(PeerUnreachable, match="no response within"):
                await client.request("GET", server.uri + "/slow", timeout=0.3)
            with pytest.raises(PeerUnreachable):
                await client.request("GET", gone.uri + "/x", timeout=3)
        finally:
            recorder.release.set()
            await client.close()
            await server.close()

    run(scenario)


def test_unknown_method_and_bad_code_are_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        CoapResponse("205")

    async def scenario() -> None:
        client = await CoapEndpoint.bind("127.0.0.1", 0)
        try:
            with pytest.raises(InvalidInput, match="CoAP method"):
                await client.request("BREW", "coap://127.0.0.1:9/x", timeout=1)
        finally:
            await client.close()

    run(scenario)


def test_observe_notify_and_cancel() -> None:
    async def scenario() -> None:
        recorder, server, client = await pair()
        seen: list[bytes] = []
        try:
            observation = await client.observe(
                server.uri + "/counter", lambda r: seen.append(r.payload), timeout=5
            )
            assert observation.active
            assert observation.response.payload == b"0"
            assert recorder.requests[-1].observe == 0
            assert server.observer_count("/counter") == 1
            for value in (1, 2):
                recorder.counter = value
                assert server.notify("/counter") == 1
                await eventually(lambda value=value: len(seen) == value)
            assert seen == [b"1", b"2"]
            observation.cancel()
            recorder.counter = 3
            # aiocoap forgets the token lazily: a notification or two later the client answers with a
            # Reset, which ends the observation on the server.
            await eventually(lambda: server.notify(("counter",)) == 0)
            assert seen == [b"1", b"2"]
            assert not observation.active
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_observing_a_failing_path_is_not_an_observation() -> None:
    async def scenario() -> None:
        _, server, client = await pair()
        try:
            observation = await client.observe(server.uri + "/missing", lambda r: None, timeout=5)
            assert observation.response.code == "4.04"
            assert not observation.active
            assert server.observer_count("/missing") == 0
        finally:
            await client.close()
            await server.close()

    run(scenario)


def test_a_port_in_use_cannot_be_bound_again() -> None:
    """Two endpoints on one UDP port would split its datagrams between them, each missing replies."""

    async def scenario() -> None:
        first = await CoapEndpoint.bind("127.0.0.1", 0)
        try:
            with pytest.raises(OSError):
                second = await CoapEndpoint.bind("127.0.0.1", first.port)
                await second.close()
        finally:
            await first.close()

    run(scenario)


def test_no_exception_from_aiocoap_reaches_tinydtls_in_the_middle_of_a_record(caplog) -> None:
    """A decrypted record is handed to aiocoap from C; whatever aiocoap raises is dropped there, and
    tinydtls hears the record was taken whole."""
    from tinymlaas.lwm2m.transport.coap import _dispatched

    def late_answer(sender: object, data: bytes) -> int:
        raise asyncio.InvalidStateError("invalid state")  # an answer to a request given up

    def broken(sender: object, data: bytes) -> int:
        raise TypeError("argument of type 'NoneType' is not iterable")

    assert _dispatched(late_answer, None, b"12345") == 5
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert _dispatched(broken, None, b"123") == 3
    assert "could not take" in caplog.text
    assert _dispatched(lambda sender, data: len(data), None, b"ok") == 2
