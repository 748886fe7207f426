"""Devices prove who they are over DTLS-PSK; impostors, strangers and plain CoAP get nowhere."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tinymlaas.agent import Agent
from tinymlaas.catalog import load_catalog
from tinymlaas.deploy import SigningKey
from tinymlaas.errors import Conflict, InvalidInput
from tinymlaas.lwm2m.core import DeviceCredentials
from tinymlaas.lwm2m.transport import CoapEndpoint, PeerUnreachable
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import list_devices, show_device
from tinymlaas.services.provisioning import provision_device, revoke_device
from tinymlaas.settings import Settings

BOARD = "pico"


@pytest.fixture
def context(tmp_path: Path) -> Context:
    return Context(Settings(data_dir=tmp_path / "data"))


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), 40))


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not await asyncio.to_thread(check):
            await asyncio.sleep(0.05)


def kinds(context: Context, endpoint: str) -> list[str]:
    return [event["kind"] for event in show_device(context, endpoint).events]


async def start_agent(fleet: FleetService, state_dir: Path, endpoint: str, **options: object) -> Agent:
    board = load_catalog().board(BOARD)
    return await Agent.start(
        board,
        endpoint,
        options.pop("server_uri", fleet.uri),  # type: ignore[arg-type]
        state_dir,
        SigningKey.generate().public_key_bytes(),
        request_timeout=3,
        **options,  # type: ignore[arg-type]
    )


def test_a_provisioned_agent_registers_over_dtls_and_the_server_reads_it_back(
    context: Context, tmp_path: Path
) -> None:
    credentials = provision_device(context, "pico-1", BOARD, state_dir=tmp_path / "pico-1")
    assert (tmp_path / "pico-1" / "security.json").stat().st_mode & 0o777 == 0o600
    assert DeviceCredentials.load(tmp_path / "pico-1") == credentials

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        assert fleet.uri.startswith("coaps://") and fleet.nosec_uri is None
        agent = await start_agent(fleet, tmp_path / "pico-1", "pico-1")
        try:
            assert agent.registered
            # The server's own requests (Read, Observe) reach the device over the device's DTLS session.
            await eventually(lambda: "reported" in kinds(context, "pico-1"))
            device = show_device(context, "pico-1")
            assert device.online and device.board == BOARD
            assert device.address is not None and device.address.startswith("coaps://")
        finally:
            await agent.stop()
            await fleet.stop()

    run(scenario)


def test_an_impostor_with_the_name_but_not_the_key_is_refused_and_stored_nowhere(
    context: Context, tmp_path: Path
) -> None:
    provision_device(context, "pico-1", BOARD)
    forged = DeviceCredentials("pico-1", "coaps://127.0.0.1:5684", "pico-1", b"0" * 16)

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        events: list[str] = []
        agent = await start_agent(
            fleet, tmp_path / "fake", "pico-1", credentials=forged, on_event=lambda e: events.append(e.kind)
        )
        try:
            assert not agent.registered
            assert "registration-failed" in events
            assert list_devices(context) == []
        finally:
            await agent.stop()
            await fleet.stop()

    run(scenario)


def test_a_device_cannot_register_under_another_devices_name(context: Context, tmp_path: Path) -> None:
    provision_device(context, "pico-1", BOARD)
    mallory = provision_device(context, "pico-2", BOARD)

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        client = await CoapEndpoint.connect_secure(fleet.uri, mallory.identity, mallory.key, _nothing)
        try:
            answer = await client.request("POST", f"{fleet.uri}/rd", b"</3/0>", query=("ep=pico-1", "lt=60"))
            assert answer.code == "4.03" and "pico-2" in answer.diagnostic
            assert list_devices(context) == []
        finally:
            await client.close()
            await fleet.stop()

    run(scenario)


def test_a_registration_id_does_not_let_another_device_move_or_remove_a_registration(
    context: Context, tmp_path: Path
) -> None:
    provision_device(context, "pico-1", BOARD, state_dir=tmp_path / "pico-1")
    mallory = provision_device(context, "pico-2", BOARD)

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        agent = await start_agent(fleet, tmp_path / "pico-1", "pico-1")
        client = await CoapEndpoint.connect_secure(fleet.uri, mallory.identity, mallory.key, _nothing)
        try:
            registration = fleet.server.store.get_by_endpoint("pico-1")
            assert registration is not None
            location = f"{fleet.uri}/rd/{registration.registration_id}"
            assert (await client.request("POST", location)).code == "4.03"
            assert (await client.request("DELETE", location)).code == "4.03"
            assert fleet.server.store.get_by_endpoint("pico-1") == registration
        finally:
            await client.close()
            await agent.stop()
            await fleet.stop()

    run(scenario)


def test_plain_coap_is_closed_unless_opened_and_then_never_for_a_provisioned_name(
    context: Context, tmp_path: Path
) -> None:
    with pytest.raises(InvalidInput, match="allow_nosec"):
        asyncio.run(FleetService.start(context, "127.0.0.1", 0, nosec_port=0))
    context = Context(Settings(data_dir=tmp_path / "data", allow_nosec=True))
    provision_device(context, "pico-1", BOARD)

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        client = await CoapEndpoint.bind("127.0.0.1", 0)
        try:
            assert fleet.nosec_uri is not None
            taken = await client.request("POST", f"{fleet.nosec_uri}/rd", b"</3/0>", query=("ep=pico-1",))
            assert taken.code == "4.03" and "coaps" in taken.diagnostic
            fresh = await client.request("POST", f"{fleet.nosec_uri}/rd", b"</3/0>", query=("ep=dev-board",))
            assert fresh.code == "2.01"  # development devices that were never provisioned
            assert [device.endpoint for device in list_devices(context)] == ["dev-board"]
        finally:
            await client.close()
            await fleet.stop()

    run(scenario)


def test_a_revoked_device_can_neither_reconnect_nor_keep_its_registration(
    context: Context, tmp_path: Path
) -> None:
    provision_device(context, "pico-1", BOARD, state_dir=tmp_path / "pico-1")

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        agent = await start_agent(fleet, tmp_path / "pico-1", "pico-1", lifetime=2)
        try:
            assert agent.registered
            revoke_device(context, "pico-1")
            # Its next Update, over the session it still holds, is refused; it then fails to re-register.
            await eventually(lambda: not show_device(context, "pico-1").online)
        finally:
            await agent.stop(deregister=False)
            await fleet.stop()
        fleet = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        again = await start_agent(fleet, tmp_path / "pico-1", "pico-1")
        try:
            assert not again.registered
        finally:
            await again.stop()
            await fleet.stop()

    run(scenario)


def test_the_agent_obeys_its_server_only(tmp_path: Path) -> None:
    context = Context(Settings(data_dir=tmp_path / "data", allow_nosec=True))

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, nosec_port=0, request_timeout=3)
        assert fleet.nosec_uri is not None
        agent = await start_agent(fleet, tmp_path / "dev", "dev-board", server_uri=fleet.nosec_uri)
        stranger = await CoapEndpoint.bind("127.0.0.1", 0)
        try:
            for method, path, payload in [
                ("POST", "/3/0/4", b""),  # Reboot
                ("PUT", "/9/0/3", b"coap://127.0.0.1:1/pkg/evil"),  # Package URI
                ("POST", "/9/0/6", b""),  # Uninstall
                ("GET", "/3/0", b""),
            ]:
                answer = await stranger.request(method, agent.uri + path, payload)
                assert answer.code == "4.03", (method, path, answer)
            assert agent.registered
        finally:
            await stranger.close()
            await agent.stop()
            await fleet.stop()

    run(scenario)


def test_a_dtls_agent_has_no_door_but_its_session(context: Context, tmp_path: Path) -> None:
    provision_device(context, "pico-1", BOARD, state_dir=tmp_path / "pico-1")

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, request_timeout=3)
        agent = await start_agent(fleet, tmp_path / "pico-1", "pico-1")
        stranger = await CoapEndpoint.bind("127.0.0.1", 0)
        try:
            registration = fleet.server.store.get_by_endpoint("pico-1")
            assert registration is not None
            port = registration.address.rsplit(":", 1)[1]  # the agent's side of its DTLS session
            with pytest.raises(PeerUnreachable):
                await stranger.request("POST", f"coap://127.0.0.1:{port}/3/0/4", timeout=2)
            assert agent.registered
        finally:
            await stranger.close()
            await agent.stop()
            await fleet.stop()

    run(scenario)


def test_provisioning_refuses_bad_names_unknown_boards_and_a_second_key_unless_rotated(
    context: Context,
) -> None:
    with pytest.raises(InvalidInput, match="endpoint name"):
        provision_device(context, "<b>pico</b>", BOARD)
    with pytest.raises(Exception, match="no-such-board"):
        provision_device(context, "pico-1", "no-such-board")
    first = provision_device(context, "pico-1", BOARD)
    with pytest.raises(Conflict, match="already provisioned"):
        provision_device(context, "pico-1", BOARD)
    assert provision_device(context, "pico-1", BOARD, rotate=True).key != first.key


def test_libcoap_registers_over_dtls_with_the_provisioned_key(context: Context) -> None:
    """Interoperability: libcoap's OpenSSL DTLS client, given the identity and key, is let in."""
    credentials = provision_device(context, "libcoap-1", BOARD)

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, request_timeout=1)

        def register(key: str, endpoint: str) -> str:
            command = [
                "coap-client-openssl", "-m", "post", "-B", "5", "-e", "</3/0>", "-u", credentials.identity,
                "-k", key, f"{fleet.uri}/rd?ep={endpoint}&lt=60&lwm2m=1.1&b=U",
            ]  # fmt: skip
            done = subprocess.run(command, capture_output=True, text=True, timeout=20)
            return done.stdout + done.stderr

        try:
            wrong = await asyncio.to_thread(register, "f" * 16, "libcoap-1")
            assert list_devices(context) == [], wrong
            other = await asyncio.to_thread(register, credentials.key.decode(), "pico-9")
            assert "4.03" in other or "Forbidden" in other, other
            await asyncio.to_thread(register, credentials.key.decode(), "libcoap-1")
            await eventually(lambda: [d.endpoint for d in list_devices(context)] == ["libcoap-1"])
        finally:
            await fleet.stop()

    run(scenario)


async def _nothing(request: object) -> object:
    raise AssertionError("nothing should be asked of this client")
