"""A device's object tree read and executed from its dashboard page, through the running LwM2M server,
against a real agent over DTLS on loopback."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import httpx
import pytest

from helpers.pages import texts
from helpers.seeding import log_in, serving
from tinymlaas.agent import Agent
from tinymlaas.catalog import load_catalog
from tinymlaas.deploy.signing import load_or_create_signing_key
from tinymlaas.server.app import create_app
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.audit import audit_page
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import show_device
from tinymlaas.services.provisioning import provision_device
from tinymlaas.settings import Settings

ENDPOINT = "dev-tree"


@pytest.fixture
def context(tmp_path) -> Context:
    return Context(Settings(data_dir=tmp_path / "data"))


async def _until(check: Callable[[], bool], timeout: float = 15.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


def _values(page: str) -> dict[str, str]:
    """Path -> the value cell of each row the page's read result shows."""
    rows = re.findall(r'data-testid="read-value" data-path="([^"]+)">(.*?)</tr>', page, re.S)
    return {path: re.findall(r"<td>(.*?)</td>", row, re.S)[-1] for path, row in rows}


def test_a_viewer_reads_and_an_operator_executes_through_the_running_server(
    context: Context, tmp_path
) -> None:
    key = load_or_create_signing_key(context.settings.keys_dir)

    async def scenario() -> None:
        fleet = await FleetService.start(context, "127.0.0.1", 0, request_timeout=5)
        provision_device(context, ENDPOINT, "nano33ble", state_dir=tmp_path / "agent")
        agent = await Agent.start(
            load_catalog().board("nano33ble"), ENDPOINT, fleet.uri, tmp_path / "agent", key.public_key_bytes()
        )
        try:
            await _until(lambda: show_device(context, ENDPOINT).capabilities.get("runtime") == "tflm")
            await _until(lambda: "update_state_text" in show_device(context, ENDPOINT).installed)
            with serving(create_app(context, devices=fleet.link)) as base:
                viewer = httpx.Client(base_url=base, timeout=30)
                operator = httpx.Client(base_url=base, timeout=30)
                for client, role in ((viewer, Role.VIEWER), (operator, Role.OPERATOR)):
                    token = create_token(context, role, f"tree {role}")[1]
                    assert (await asyncio.to_thread(log_in, client, token)).status_code == 303

                page = (await asyncio.to_thread(viewer.get, f"/devices/{ENDPOINT}")).text
                assert 'data-testid="no-lwm2m-server"' not in page
                assert {"/3", "/9", "/26241"} <= set(
                    re.findall(r'data-testid="object" data-path="([^"]+)"', page)
                )
                # The server observes the telemetry and the update state it follows on the device row.
                observed = re.findall(r'data-testid="resource" data-path="([^"]+)" data-observed', page)
                assert {"/26241/0/10", "/9/0/7", "/9/0/9"} <= set(observed), observed
                assert 'data-testid="execute"' not in page  # a viewer reads, never executes

                read = await asyncio.to_thread(viewer.get, f"/devices/{ENDPOINT}", params={"read": "/3/0"})
                assert read.status_code == 200, texts(read.text, "flash-error")
                values = _values(read.text)
                assert values["/3/0/1"] == "nano33ble"
                assert values["/3/0/2"] == ENDPOINT

                refused = await asyncio.to_thread(
                    viewer.post, f"/devices/{ENDPOINT}/execute/9/0/11", follow_redirects=False
                )
                assert refused.status_code == 403

                page = (await asyncio.to_thread(operator.get, f"/devices/{ENDPOINT}")).text
                assert 'data-testid="execute" data-path="/9/0/11"' in page
                executed = await asyncio.to_thread(
                    operator.post, f"/devices/{ENDPOINT}/execute/9/0/11", follow_redirects=False
                )
                assert executed.status_code == 303, executed.text
                landed = (await asyncio.to_thread(operator.get, executed.headers["location"])).text
                assert texts(landed, "flash-notice") == [
                    "Executed /9/0/11 (Deactivate): the device accepted it."
                ]
                read = await asyncio.to_thread(
                    operator.get, f"/devices/{ENDPOINT}", params={"read": "/9/0/12"}
                )
                assert _values(read.text) == {"/9/0/12": "False"}

                not_executable = await asyncio.to_thread(
                    operator.post, f"/devices/{ENDPOINT}/execute/9/0/7", follow_redirects=False
                )
                assert not_executable.status_code == 422
                assert "Update State is not executable" in texts(not_executable.text, "flash-error")[0]
                viewer.close()
                operator.close()
        finally:
            await agent.stop()
            await fleet.stop()

    asyncio.run(asyncio.wait_for(scenario(), 90))
    events, _ = audit_page(context)
    executes = [e for e in events if e["target"] == f"/devices/{ENDPOINT}/execute/9/0/11"]
    outcomes = sorted((e["role"], e["detail"]["outcome"]) for e in executes)
    assert outcomes == [("operator", "ok"), ("viewer", "denied")]
    assert any(e["actor"].startswith("token tree operator") for e in executes)
