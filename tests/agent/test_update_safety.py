"""Replayed, downgraded and wrong-board packages are refused by a real agent, before anything installs."""

from __future__ import annotations

import json

from helpers.packages import signed
from tinymlaas.agent import Agent, AgentEvent, UpdateResult, UpdateState
from tinymlaas.agent.sequences import SEQUENCES_FILE
from tinymlaas.catalog import load_catalog
from tinymlaas.deploy import SigningKey
from tinymlaas.lwm2m.core import ContentFormat
from tinymlaas.lwm2m.server import Lwm2mServer

from .conftest import Package
from .test_client import Rig, _bad_selftest, _start_agent, run, with_rig

MODEL_LINE = "agent test cnn"


def _offer(rig: Rig, token: str, package: bytes) -> str:
    """``package`` exactly as signed earlier, published again: what an attacker who kept it can send."""
    return rig.server.uri + rig.server.publish(token, package, endpoints=[rig.endpoint])


async def _refused(rig: Rig, uri: str) -> str:
    await rig.update(uri, UpdateState.INITIAL, UpdateResult.INTEGRITY_CHECK_FAILURE)
    return await rig.read("/9/0/16", ContentFormat.TEXT_PLAIN)


def test_an_older_signed_package_is_refused_once_a_newer_one_is_confirmed_even_after_a_restart(
    tmp_path, packages: dict[tuple[str, int], Package]
):
    key = SigningKey.generate()
    v1 = signed(packages[("tflm", 1)].zip, key)
    v2 = signed(packages[("tflm", 2)].zip, key)
    events: list[AgentEvent] = []

    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0, request_timeout=5)
        agent = await _start_agent(server, "tflm", tmp_path, key, on_event=events.append)
        try:
            rig = Rig(server, agent, key, "dev-tflm")
            await rig.update(_offer(rig, "v1", v1), UpdateState.INSTALLED, UpdateResult.INSTALLED)
            await rig.update(_offer(rig, "v2", v2), UpdateState.INSTALLED, UpdateResult.INSTALLED)
            confirmed = json.loads((tmp_path / SEQUENCES_FILE).read_text())
            assert list(confirmed) == [MODEL_LINE] and confirmed[MODEL_LINE] > 0

            reason = await _refused(rig, _offer(rig, "v1-replayed", v1))
            assert f"refused {MODEL_LINE} v1" in reason and "replay or downgrade" in reason
            assert f"is not above {confirmed[MODEL_LINE]}" in reason
            assert any("replay or downgrade" in e.message for e in events if e.kind == "update")
            assert rig.version() == 2 and rig.agent.download.uri is None

            await agent.stop(deregister=False)
            agent = await _start_agent(server, "tflm", tmp_path, key)
            rig = Rig(server, agent, key, "dev-tflm")
            assert agent.registered
            # The same package it runs is no newer either, so it cannot be pushed again to reset the device.
            assert "replay or downgrade" in await _refused(rig, _offer(rig, "v2-replayed", v2))
            assert "replay or downgrade" in await _refused(rig, _offer(rig, "v1-again", v1))
            assert rig.version() == 2 and rig.agent.slots.active().slot == "b"

            # The operator going back to version 1 on purpose signs it anew: a higher sequence.
            await rig.update(
                rig.publish("v1-resigned", packages[("tflm", 1)].zip),
                UpdateState.INSTALLED,
                UpdateResult.INSTALLED,
            )
            assert rig.version() == 1
            assert json.loads((tmp_path / SEQUENCES_FILE).read_text())[MODEL_LINE] > confirmed[MODEL_LINE]
        finally:
            await agent.stop()
            await server.stop()

    run(scenario, timeout=60)


def test_a_package_that_failed_its_self_test_does_not_block_an_older_signed_fix(tmp_path, packages):
    """Only a confirmed sequence counts: a package signed before a broken one still installs after it."""
    key = SigningKey.generate()
    v1 = signed(packages[("tflm", 1)].zip, key)
    fix = signed(packages[("tflm", 2)].zip, key)

    async def body(rig: Rig) -> None:
        await rig.update(_offer(rig, "v1", v1), UpdateState.INSTALLED, UpdateResult.INSTALLED)
        await rig.update(
            rig.publish("v2-broken", _bad_selftest(packages[("tflm", 2)])),
            UpdateState.DELIVERED,
            UpdateResult.INSTALLATION_FAILURE,
        )
        await rig.update(_offer(rig, "v2-fix", fix), UpdateState.INSTALLED, UpdateResult.INSTALLED)
        assert rig.version() == 2

    with_rig(tmp_path, key, "tflm", body)


def test_a_package_built_for_another_board_is_refused_even_with_the_same_runtime(tmp_path, packages):
    key = SigningKey.generate()
    pico = load_catalog().board("pico")
    built_for = packages[("tflm", 1)].manifest["board"]
    assert built_for != pico.id and packages[("tflm", 1)].manifest["runtime"] in pico.runtimes

    async def scenario() -> None:
        server = await Lwm2mServer.start("127.0.0.1", 0, request_timeout=5)
        agent = await Agent.start(pico, "dev-pico", server.uri, tmp_path, key.public_key_bytes())
        try:
            rig = Rig(server, agent, key, "dev-pico")
            await rig.update(
                rig.publish("nano-v1", packages[("tflm", 1)].zip),
                UpdateState.INITIAL,
                UpdateResult.UNSUPPORTED_PACKAGE_TYPE,
            )
            reason = await rig.read("/9/0/16", ContentFormat.TEXT_PLAIN)
            assert reason == f"refused: the package was built for board {built_for!r}, this device is a pico"
            assert agent.slots.active() is None
            assert not (tmp_path / SEQUENCES_FILE).exists()
        finally:
            await agent.stop()
            await server.stop()

    run(scenario)
