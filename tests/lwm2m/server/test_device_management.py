"""Read, Write, Execute, Discover and Observe from the server to a fake device over real CoAP."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.lwm2m.core import ContentFormat, Path, Value
from tinymlaas.lwm2m.server import DeviceRequestFailed, Lwm2mServer
from tinymlaas.lwm2m.transport import PeerUnreachable

from .fake_device import FakeDevice
from .helpers import eventually, run


def with_device(body: Callable[[Lwm2mServer, FakeDevice], Awaitable[None]]) -> None:
    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0, request_timeout=3)
        device = await FakeDevice.start()
        try:
            assert (await device.register(server.uri)).code == "2.01"
            await body(server, device)
        finally:
            await device.close()
            await server.stop()

    run(scenario)


@pytest.mark.parametrize("accept", [ContentFormat.SENML_CBOR, ContentFormat.SENML_JSON])
def test_read_instances_in_senml(accept: ContentFormat) -> None:
    async def body(server: Lwm2mServer, device: FakeDevice) -> None:
        values = await server.devices.read("dev1", "/3/0", accept=accept)
        assert values == device.below(Path(3, 0))
        runtime = await server.devices.read("dev1", Path(26241, 0), accept=accept)
        assert runtime[Path(26241, 0, 3)] == 65536
        assert runtime[Path(26241, 0, 11)] == 1.5
        assert isinstance(runtime[Path(26241, 0, 11)], float)

    with_device(body)


def test_read_one_resource_as_plain_text() -> None:
    async def body(server: Lwm2mServer, device: FakeDevice) -> None:
        value = await server.devices.read("dev1", "/26241/0/4", accept=ContentFormat.TEXT_PLAIN)
        assert value == {Path(26241, 0, 4): 262144}

    with_device(body)


def test_read_errors() -> None:
    async def body(server: Lwm2mServer, device: FakeDevice) -> None:
        with pytest.raises(NotFound, match=r"4\.04"):
            await server.devices.read("dev1", "/3/1")
        with pytest.raises(NotFound, match="not registered"):
            await server.devices.read("nobody", "/3/0")
        with pytest.raises(InvalidInput):
            await server.devices.read("dev1", "/3/x")

    with_device(body)


def test_write_execute_discover() -> None:
    async def body(server: Lwm2mServer, device: FakeDevice) -> None:
        uri = f"{server.uri}/pkg/abc"
        await server.devices.write("dev1", "/9/0/3", uri)
        assert device.written == {Path(9, 0, 3): uri}
        with pytest.raises(InvalidInput):
            await server.devices.write("dev1", "/9/0/3", 42)
        with pytest.raises(DeviceRequestFailed) as failed:
            await server.devices.write("dev1", "/9/0/3", uri, content_format=ContentFormat.SENML_JSON)
        assert failed.value.code == "4.00"

        await server.devices.execute("dev1", "/3/0/4")
        await server.devices.execute("dev1", Path(9, 0, 4), args="0='now'")
        assert device.executed == [(Path(3, 0, 4), ""), (Path(9, 0, 4), "0='now'")]
        with pytest.raises(InvalidInput, match="not executable"):
            await server.devices.execute("dev1", "/3/0/0")

        links = await server.devices.discover("dev1", "/26241/0")
        targets = [link.target for link in links]
        assert targets[0] == "/26241/0"
        assert "/26241/0/10" in targets

    with_device(body)


def test_observe_delivers_notifications_until_cancelled() -> None:
    async def body(server: Lwm2mServer, device: FakeDevice) -> None:
        seen: list[dict[Path, Value]] = []
        count = Path(26241, 0, 10)
        observation = await server.devices.observe("dev1", count, seen.append)
        assert observation.values == {count: 0}
        assert server.devices.observations("dev1") == [observation]
        for expected in (1, 2):
            assert device.bump(count) == 1
            await eventually(lambda expected=expected: len(seen) == expected)
        assert seen == [{count: 1}, {count: 2}]
        observation.cancel()
        await eventually(lambda: device.bump(count) == 0)
        assert seen == [{count: 1}, {count: 2}]
        assert server.devices.observations("dev1") == []

    with_device(body)


def test_deregistration_cancels_observations() -> None:
    async def body(server: Lwm2mServer, device: FakeDevice) -> None:
        observation = await server.devices.observe("dev1", "/26241/0/10", lambda values: None)
        assert observation.active
        assert (
            await device.coap.request("DELETE", server.uri + "/" + "/".join(device.location))
        ).code == "2.02"
        assert not observation.active
        await eventually(lambda: device.bump(Path(26241, 0, 10)) == 0)

    with_device(body)


def test_unreachable_device() -> None:
    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0, request_timeout=3)
        device = await FakeDevice.start()
        try:
            await device.register(server.uri)
        finally:
            await device.close()
        try:
            with pytest.raises(PeerUnreachable):
                await server.devices.read("dev1", "/3/0")
        finally:
            await server.stop()

    run(scenario)
