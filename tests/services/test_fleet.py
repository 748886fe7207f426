"""The fleet service against real CoAP devices on loopback: registrations and reports land in the database."""

from __future__ import annotations

import asyncio
import pathlib
import threading
from collections.abc import Awaitable, Callable

import pytest

from tinymlaas.errors import NotFound
from tinymlaas.lwm2m.core import ContentFormat, Path, format_links, senml
from tinymlaas.lwm2m.transport import CoapEndpoint, CoapRequest, CoapResponse
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import list_devices, show_device, tag_device
from tinymlaas.settings import Settings


@pytest.fixture
def context(tmp_path: pathlib.Path) -> Context:
    """The devices here are test doubles speaking plain CoAP, which the server takes with allow_nosec only."""
    return Context(Settings(data_dir=tmp_path / "data", allow_nosec=True))


RUNTIME_VALUES: dict[Path, object] = {
    Path(26241, 0, 0): "tflm",
    Path(26241, 0, 1): "1.2",
    Path(26241, 0, 2, 0): "CONV_2D",
    Path(26241, 0, 2, 1): "FULLY_CONNECTED",
    Path(26241, 0, 3): 65536,
    Path(26241, 0, 4): 262144,
    Path(26241, 0, 6): "nano33ble",
    Path(26241, 0, 10): 7,
    Path(26241, 0, 11): 1.5,
}
DEVICE_VALUES: dict[Path, object] = {Path(3, 0, 0): "Arduino", Path(3, 0, 1): "nano33ble-rev2"}
SOFTWARE_VALUES: dict[Path, object] = {
    Path(9, 0, 0): "kws",
    Path(9, 0, 1): "3",
    Path(9, 0, 7): 4,
    Path(9, 0, 9): 2,
}


class Device:
    """A device that answers SenML reads (and observes) of the values it holds, 4.04 for anything else."""

    def __init__(self, values: dict[Path, object]) -> None:
        self.values = dict(values)
        self.coap: CoapEndpoint
        self.location: tuple[str, ...] = ()
        self.reads: list[str] = []  # the paths of plain reads, observations and notifications apart

    @classmethod
    async def start(cls, values: dict[Path, object]) -> Device:
        device = cls(values)
        device.coap = await CoapEndpoint.bind("127.0.0.1", 0, device.handle)
        return device

    async def handle(self, request: CoapRequest) -> CoapResponse:
        path = Path.parse(request.uri_path)
        if request.observe is None:
            self.reads.append(request.uri_path)
        found = {key: value for key, value in self.values.items() if key.ids[: len(path.ids)] == path.ids}
        if request.method != "GET" or not found:
            return CoapResponse("4.04")
        fmt = request.accept or ContentFormat.SENML_CBOR
        return CoapResponse("2.05", senml.encode(found, fmt), fmt)

    async def register(self, server_uri: str, name: str) -> None:
        instances = sorted({Path(path.object_id, path.instance_id) for path in self.values})
        response = await self.coap.request(
            "POST",
            server_uri + "/rd",
            format_links(instances).encode(),
            content_format=ContentFormat.LINK_FORMAT,
            query=(f"ep={name}", "lt=60", "lwm2m=1.1"),
            timeout=5,
        )
        assert response.code == "2.01", response
        self.location = response.location_path

    async def deregister(self, server_uri: str) -> None:
        response = await self.coap.request("DELETE", server_uri + "/" + "/".join(self.location), timeout=5)
        assert response.code == "2.02", response


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(check):
            await asyncio.sleep(0.05)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 20))


def kinds(context: Context, endpoint: str) -> list[str]:
    """Event kinds, oldest first."""
    return [event["kind"] for event in reversed(show_device(context, endpoint).events)]


def test_a_registered_device_is_stored_with_what_it_reported_and_goes_offline(context: Context) -> None:
    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        device = await Device.start({**RUNTIME_VALUES, **DEVICE_VALUES, **SOFTWARE_VALUES})
        try:
            await device.register(fleet.nosec_uri, "kws-1")
            await eventually(lambda: "reported" in kinds(context, "kws-1"))
            shown = show_device(context, "kws-1")
            assert shown.online is True
            assert shown.board == "nano33ble"  # 26241/0/6 wins over the Device object's model number
            assert shown.capabilities == {
                "runtime": "tflm",
                "runtime_version": "1.2",
                "ops": ["CONV_2D", "FULLY_CONNECTED"],
                "arena_bytes_available": 65536,
                "slot_flash_bytes": 262144,
            }
            assert shown.telemetry == {"inference_count": 7, "mean_latency_ms": 1.5}
            assert shown.identity == {"manufacturer": "Arduino", "model_number": "nano33ble-rev2"}
            assert shown.installed["update_result_text"] == "installed"
            assert shown.installed["update_state_text"] == "installed"
            assert shown.model == "kws 3" and shown.last_result == "installed"
            assert shown.objects == ["/3/0", "/9/0", "/26241/0"]

            # Telemetry resources are observed: a change reaches the database by itself.
            device.values[Path(26241, 0, 10)] = 8
            await eventually(lambda: device.coap.observer_count("/26241/0/10") == 1)
            device.coap.notify("/26241/0/10")
            await eventually(lambda: show_device(context, "kws-1").telemetry.get("inference_count") == 8)

            await device.deregister(fleet.nosec_uri)
            await eventually(lambda: not show_device(context, "kws-1").online)
            assert kinds(context, "kws-1") == ["registered", "reported", "deregistered"]
            assert show_device(context, "kws-1").capabilities["runtime"] == "tflm"  # kept while away
        finally:
            await fleet.stop()
            await device.coap.close()
        assert [row.endpoint for row in list_devices(context)] == ["kws-1"]

    run(scenario)


def test_an_install_the_device_notifies_on_object_9_reaches_its_row_without_a_read(context: Context) -> None:
    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        device = await Device.start({**DEVICE_VALUES, **SOFTWARE_VALUES, Path(9, 0, 7): 1, Path(9, 0, 9): 0})
        try:
            await device.register(fleet.nosec_uri, "kws-9")
            await eventually(lambda: device.coap.observer_count("/9/0") == 1)
            assert device.coap.observer_count("/9/0/7") == device.coap.observer_count("/9/0/9") == 0
            reads = list(device.reads)
            await eventually(lambda: show_device(context, "kws-9").installed.get("update_state") == 1)

            device.values.update({Path(9, 0, 1): "4", Path(9, 0, 7): 4, Path(9, 0, 9): 2})
            device.coap.notify("/9/0")
            await eventually(lambda: show_device(context, "kws-9").model == "kws 4")
            shown = show_device(context, "kws-9")
            assert shown.installed["update_state_text"] == "installed" and shown.last_result == "installed"
            assert device.reads == reads  # the notification carried the name and version with the state
        finally:
            await fleet.stop()
            await device.coap.close()

    run(scenario)


def test_a_device_without_the_runtime_object_still_registers(context: Context) -> None:
    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        device = await Device.start({**DEVICE_VALUES})  # no 26241, no 9: both answer 4.04
        try:
            await device.register(fleet.nosec_uri, "plain")
            await eventually(lambda: "reported" in kinds(context, "plain"))
            shown = show_device(context, "plain")
            assert shown.online is True
            assert shown.board == "nano33ble-rev2"  # fell back to the Device object's model number
            assert shown.capabilities == {} and shown.installed == {}
            failed = [event for event in shown.events if event["kind"] == "read_failed"]
            assert sorted(event["detail"]["path"] for event in failed) == ["/26241/0", "/9/0"]
            assert all("4.04" in event["detail"]["error"] for event in failed)
        finally:
            await fleet.stop()
            await device.coap.close()
        # Registrations end with the process that held them: the device is offline once the server stops.
        assert show_device(context, "plain").online is False
        assert kinds(context, "plain")[-1] == "offline"

    run(scenario)


def test_a_lapsed_lifetime_marks_the_device_offline(context: Context) -> None:
    async def scenario() -> None:
        now = [1_000_000.0]
        fleet = await FleetService.start(
            context,
            "127.0.0.1",
            0,
            nosec_port=0,
            clock=lambda: now[0],
            presence_interval=0.05,
            request_timeout=3,
        )
        device = await Device.start(DEVICE_VALUES)
        try:
            await device.register(fleet.nosec_uri, "sleepy")
            await eventually(lambda: "reported" in kinds(context, "sleepy"))
            now[0] += 61
            await eventually(lambda: not show_device(context, "sleepy").online)
            offline = show_device(context, "sleepy").events[0]
            assert offline["kind"] == "offline" and offline["detail"]["reason"] == "lifetime expired"
        finally:
            await fleet.stop()
            await device.coap.close()

    run(scenario)


def test_unknown_devices_are_named_and_tags_are_kept(context: Context) -> None:
    with pytest.raises(NotFound, match="no device has registered yet"):
        show_device(context, "ghost")

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        device = await Device.start(DEVICE_VALUES)
        try:
            await device.register(fleet.nosec_uri, "tagged")
        finally:
            await fleet.stop()
            await device.coap.close()

    run(scenario)
    with pytest.raises(NotFound, match="known: tagged"):
        show_device(context, "ghost")
    assert tag_device(context, "tagged", ["wave-2", "lab", "lab"]).tags == ["lab", "wave-2"]
    assert list_devices(context)[0].tags == ["lab", "wave-2"]


def test_an_update_that_carries_a_new_object_list_changes_what_the_server_shows(context: Context) -> None:
    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        device = await Device.start(DEVICE_VALUES)
        try:
            await device.register(fleet.nosec_uri, "growing")
            await eventually(lambda: show_device(context, "growing").objects == ["/3/0"])
            links = format_links([Path(3, 0), Path(4, 0), Path(9, 0)]).encode()
            location = f"{fleet.nosec_uri}/{'/'.join(device.location)}"
            answer = await device.coap.request(
                "POST", location, links, content_format=ContentFormat.LINK_FORMAT, timeout=5
            )
            assert answer.code == "2.04", answer
            await eventually(lambda: show_device(context, "growing").objects == ["/3/0", "/4/0", "/9/0"])
            updated = [e for e in show_device(context, "growing").events if e["kind"] == "updated"]
            assert updated[0]["detail"]["objects"] == ["/3/0", "/4/0", "/9/0"]
        finally:
            await fleet.stop()
            await device.coap.close()

    run(scenario)


def test_a_device_registering_anew_shows_what_it_reports_now_not_before(context: Context) -> None:
    """A device reset under its old name (a demo re-run): no model and no counts from its earlier life.

    The fresh device's Object 9 does not answer, as when that read is lost, so nothing it reports this
    time replaces the model stored from before: the Register itself must clear it.
    """
    fresh_runtime = {**RUNTIME_VALUES, Path(26241, 0, 10): 0, Path(26241, 0, 11): 0.0}

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        before = await Device.start({**RUNTIME_VALUES, **DEVICE_VALUES, **SOFTWARE_VALUES})
        try:
            await before.register(fleet.nosec_uri, "kws-1")
            await eventually(lambda: "reported" in kinds(context, "kws-1"))
            assert show_device(context, "kws-1").model == "kws 3"
        finally:
            await fleet.stop()
            await before.coap.close()

        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        fresh = await Device.start({**fresh_runtime, **DEVICE_VALUES})
        try:
            await fresh.register(fleet.nosec_uri, "kws-1")
            registered = show_device(context, "kws-1")
            assert (registered.model, registered.installed, registered.telemetry) == (None, {}, {})
            assert registered.capabilities["runtime"] == "tflm"  # what it is stays known to the gate

            await eventually(lambda: kinds(context, "kws-1").count("reported") == 2)
            shown = show_device(context, "kws-1")
            assert (shown.model, shown.last_result, shown.installed) == (None, None, {})
            assert shown.telemetry == {"inference_count": 0, "mean_latency_ms": 0.0}
            assert kinds(context, "kws-1") == [
                "registered", "reported", "offline", "registered", "read_failed", "reported",
            ]  # fmt: skip
        finally:
            await fleet.stop()
            await fresh.coap.close()

    run(scenario)


def test_a_re_register_is_answered_without_waiting_for_the_work_queued_before_it(context: Context) -> None:
    """In a storm the writer has reports queued; a device registering again gets its answer once its
    own row is stored, and the end of the registration it replaced is stored after the queue."""

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        device = await Device.start({**RUNTIME_VALUES, **DEVICE_VALUES})
        first, queued = threading.Event(), threading.Event()
        try:
            await device.register(fleet.nosec_uri, "kws-1")
            await eventually(lambda: "reported" in kinds(context, "kws-1"))
            running = asyncio.create_task(fleet._write(first.wait, 10))
            await asyncio.sleep(0.05)
            waiting = asyncio.create_task(fleet._write(queued.wait, 10))  # a report queued behind it
            await asyncio.sleep(0.05)
            again = asyncio.create_task(device.register(fleet.nosec_uri, "kws-1"))
            await asyncio.sleep(0.2)
            first.set()
            await asyncio.wait_for(again, 3)  # answered while the queued work still waits
            assert not waiting.done()
            queued.set()
            await asyncio.gather(running, waiting)
            await eventually(lambda: "deregistered" in kinds(context, "kws-1"))
            shown = show_device(context, "kws-1")
            assert shown.online is True
            (ended,) = [event for event in shown.events if event["kind"] == "deregistered"]
            assert ended["detail"]["reason"] == "re-registered"
        finally:
            first.set()
            queued.set()
            await fleet.stop()
            await device.coap.close()

    run(scenario)
