"""Register, Update, De-register and lifetime expiry against a fake device over real CoAP on 127.0.0.1."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tinymlaas.lwm2m.core import ContentFormat, Path, Registration
from tinymlaas.lwm2m.server import Lwm2mServer

from .fake_device import INSTANCES, FakeDevice
from .helpers import FakeClock, eventually, run


class Events:
    def __init__(self) -> None:
        self.log: list[tuple[str, Registration]] = []

    def listener(self, kind: str) -> Callable[[Registration], None]:
        def record(registration: Registration) -> None:
            self.log.append((kind, registration))

        return record

    def kinds(self) -> list[str]:
        return [kind for kind, _ in self.log]


async def start(clock: FakeClock, events: Events, presence_interval: float = 60.0) -> Lwm2mServer:
    return await Lwm2mServer.start(
        "127.0.0.1",
        0,
        clock=clock,
        presence_interval=presence_interval,
        on_registered=events.listener("registered"),
        on_updated=events.listener("updated"),
        on_deregistered=events.listener("deregistered"),
        on_offline=events.listener("offline"),
    )


def test_register_update_deregister() -> None:
    async def scenario() -> None:
        clock, events = FakeClock(), Events()
        server = await start(clock, events)
        device = await FakeDevice.start()
        try:
            created = await device.register(server.uri, lifetime=60)
            assert created.code == "2.01"
            assert created.location_path[0] == "rd"
            registration = server.store.get_by_endpoint("dev1")
            assert registration is not None
            assert created.location_path == ("rd", registration.registration_id)
            assert registration.objects == INSTANCES
            assert (registration.lifetime, registration.binding, registration.lwm2m_version) == (
                60,
                "U",
                "1.1",
            )
            assert registration.address == device.coap.uri
            assert registration.registered_at == clock.now
            assert events.kinds() == ["registered"]

            clock.now += 30
            location = server.uri + "/" + "/".join(created.location_path)
            updated = await device.coap.request(
                "POST",
                location,
                b"</3/0>",
                content_format=ContentFormat.LINK_FORMAT,
                query=("lt=120",),
                timeout=5,
            )
            assert updated.code == "2.04"
            registration = server.store.get_by_endpoint("dev1")
            assert registration.lifetime == 120
            assert registration.objects == (Path(3, 0),)
            assert registration.updated_at == clock.now
            assert events.kinds() == ["registered", "updated"]

            deleted = await device.coap.request("DELETE", location, timeout=5)
            assert deleted.code == "2.02"
            assert server.store.all() == []
            assert events.kinds() == ["registered", "updated", "deregistered"]

            again = await device.coap.request("DELETE", location, timeout=5)
            assert again.code == "4.04"
            update_gone = await device.coap.request("POST", location, timeout=5)
            assert update_gone.code == "4.04"
        finally:
            await device.close()
            await server.stop()

    run(scenario)


def test_registering_again_replaces_the_old_registration() -> None:
    async def scenario() -> None:
        events = Events()
        server = await start(FakeClock(), events)
        device = await FakeDevice.start()
        try:
            first = await device.register(server.uri)
            second = await device.register(server.uri)
            assert first.location_path != second.location_path
            assert len(server.store.all()) == 1
            assert server.store.get_by_endpoint("dev1").registration_id == second.location_path[1]
            assert events.kinds() == ["registered", "deregistered", "registered"]
            assert events.log[1][1].registration_id == first.location_path[1]
        finally:
            await device.close()
            await server.stop()

    run(scenario)


def test_bad_requests_get_4_00_with_a_diagnostic() -> None:
    async def scenario() -> None:
        server = await start(FakeClock(), Events())
        client = (await FakeDevice.start()).coap
        try:
            missing_ep = await client.request("POST", server.uri + "/rd", query=("lt=60",), timeout=5)
            assert missing_ep.code == "4.00"
            assert "'ep'" in missing_ep.diagnostic
            bad_lifetime = await client.request(
                "POST", server.uri + "/rd", query=("ep=x", "lt=soon"), timeout=5
            )
            assert bad_lifetime.code == "4.00"
            assert "lifetime" in bad_lifetime.diagnostic
            bad_links = await client.request(
                "POST", server.uri + "/rd", b"</3/0", content_format=40, query=("ep=x",), timeout=5
            )
            assert bad_links.code == "4.00"
            assert "link format" in bad_links.diagnostic
            wrong_format = await client.request(
                "POST", server.uri + "/rd", b"[]", content_format=110, query=("ep=x",), timeout=5
            )
            assert wrong_format.code == "4.00"
            assert "content format 110" in wrong_format.diagnostic
            not_allowed = await client.request("GET", server.uri + "/rd", timeout=5)
            assert not_allowed.code == "4.05"
            elsewhere = await client.request("GET", server.uri + "/nothing/here", timeout=5)
            assert elsewhere.code == "4.04"
            assert server.store.all() == []
        finally:
            await client.close()
            await server.stop()

    run(scenario)


def test_lifetime_expiry_reports_the_device_offline() -> None:
    async def scenario() -> None:
        clock, events = FakeClock(), Events()
        server = await start(clock, events, presence_interval=0.02)
        device = await FakeDevice.start()
        try:
            await device.register(server.uri, lifetime=10)
            await asyncio.sleep(0.1)
            assert server.store.get_by_endpoint("dev1") is not None
            clock.now += 9.5
            await asyncio.sleep(0.1)
            assert server.store.get_by_endpoint("dev1") is not None
            clock.now += 1
            await eventually(lambda: "offline" in events.kinds())
            assert server.store.all() == []
            assert events.log[-1][1].endpoint == "dev1"
            assert await server.registrations.expire() == []
        finally:
            await device.close()
            await server.stop()

    run(scenario)
