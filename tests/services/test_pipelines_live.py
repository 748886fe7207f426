"""A three-stage cascade on real agents: applied through campaigns, configured over LwM2M, run.

A nano33ble replays labelled digits and runs the gate; windows that pass go over an emulated BLE
link to an rpi4, whose windows that pass go over Wi-Fi to a host; every node reports its counts
over LwM2M and the API shows them per stage. Stopping clears every node's stage.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from fastapi.testclient import TestClient

from tinymlaas.agent import Agent
from tinymlaas.agent.sensors import ReplaySource
from tinymlaas.api.app import create_api
from tinymlaas.catalog import load_catalog
from tinymlaas.data.scaling import InputScaling
from tinymlaas.deploy.signing import load_or_create_signing_key
from tinymlaas.lwm2m.core import Path as ObjectPath
from tinymlaas.server.fleet import FleetService
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.fleet import show_device
from tinymlaas.services.pipelines import apply_pipeline, create_pipeline, show_pipeline, stop_pipeline
from tinymlaas.services.provisioning import provision_device
from tinymlaas.services.splitting import build_split, plan_model_split
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.squeeze.runtimes import TflmRunner
from tinymlaas.storage.repositories import ModelRepository

CASCADE_NODES = (("src-1", "nano33ble"), ("gw-1", "rpi4"), ("gw-2", "rpi4"), ("cloud-1", "x86-64-host"))
CASCADE = """
name = "digits-cascade"
[[stages]]
name = "gate"
model = "digits-cnn"
nodes = ["src-1"]
condition = "not:{common}"
link = "ble"
[[stages]]
name = "classify"
model = "digits-cnn"
nodes = ["gw-1", "gw-2"]
condition = "score>=0.0"
link = "wifi"
[[stages]]
name = "identify"
model = "digits-cnn"
nodes = ["cloud-1"]
"""


@contextlib.asynccontextmanager
async def _nodes(
    context: Context, tmp_path: Path, nodes: Sequence[tuple[str, str]], recording: Path
) -> AsyncIterator[tuple[FleetService, dict[str, Agent], Callable[[str], Awaitable[Agent]]]]:
    """A server and one agent per (endpoint, board[:runtime]) node, provisioned and reported; the
    first node replays ``recording``. Yields the server, the agents and a way to start one again."""
    key = load_or_create_signing_key(context.settings.keys_dir)
    catalog = load_catalog()
    boards = {endpoint: board for endpoint, board in nodes}
    fleet = await FleetService.start(
        context, "127.0.0.1", 0, request_timeout=5, campaign_interval=0.1, install_timeout=30
    )

    async def start(endpoint: str) -> Agent:
        board, _, runtime = boards[endpoint].partition(":")
        return await Agent.start(
            catalog.board(board).running(runtime or None),
            endpoint,
            fleet.uri,
            tmp_path / endpoint,
            key.public_key_bytes(),
            sensor=ReplaySource(recording) if endpoint == nodes[0][0] else None,
            rate_hz=20,
            telemetry_interval=0.5,
        )

    agents: dict[str, Agent] = {}
    try:
        for endpoint, board in nodes:
            provision_device(context, endpoint, board.partition(":")[0], state_dir=tmp_path / endpoint)
            agents[endpoint] = await start(endpoint)
        await _until(
            lambda: all(show_device(context, e).capabilities.get("runtime") for e in boards),
            30,
            lambda: {e: show_device(context, e).capabilities for e in boards},
        )
        yield fleet, agents, start
    finally:
        for agent in agents.values():
            await agent.stop()
        await fleet.stop()


async def _until(check: Callable[[], bool], timeout: float, why: Callable[[], object]) -> None:
    """Wait for ``check``; on timeout fail with what ``why`` says of the state then."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, f"timed out: {why()}"
        await asyncio.sleep(0.1)


def _recording(context: Context, path: Path) -> tuple[Path, list[str]]:
    """The digits test split as a labelled recording the source node replays, and the int8 model's
    top label for each window in replay order (TFLM, the runtime the nano33ble runs)."""
    datasets = DatasetService(context)
    loaded = datasets.load(datasets.snapshot("digits"), seed=5)
    labels = np.array([loaded.spec.labels[int(y)] for y in loaded.arrays.y_test])
    np.savez(path, x=loaded.arrays.x_test, y=labels)
    with context.session() as session:
        model = ModelRepository(session).model("digits-cnn")
        variant = next(v for v in model.variants if v.quantization == "int8")
        blob, arena, scaling = variant.tflite_blob, variant.arena_bytes, model.input_scaling
    tflite = context.blobs.get(blob)
    info = inspect_tflite(tflite)
    runner = TflmRunner(
        tflite, info.inputs[0], info.outputs[0], arena_bytes=arena or 1 << 20,
        scaling=InputScaling.from_dict(scaling),
    )  # fmt: skip
    predicted = [loaded.spec.labels[int(np.argmax(runner.run(x)))] for x in loaded.arrays.x_test]
    return path, predicted


def _stages(view: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {stage["name"]: stage for stage in view["stages"]}


def test_a_three_stage_cascade_runs_on_emulated_nodes_and_reports_per_hop(digits_cnn_store, tmp_path) -> None:  # type: ignore[no-untyped-def]
    context, _ = digits_cnn_store
    recording, predicted = _recording(context, tmp_path / "digits.npz")
    common = Counter(predicted).most_common(1)[0][0]
    assert Counter(predicted)[common] < len(predicted), "the gate must let some windows through"

    async def scenario() -> None:
        async with _nodes(context, tmp_path, CASCADE_NODES, recording) as (fleet, agents, start):
            create_pipeline(context, CASCADE.format(common=common), fmt="toml")
            applied = apply_pipeline(context, "digits-cascade")
            assert set(applied["campaigns"]) == {"gate", "classify", "identify"}

            def view() -> dict[str, Any]:
                return show_pipeline(context, "digits-cascade")

            await _until(lambda: view()["state"] == "running", 90, view)
            await _until(
                lambda: (
                    _stages(view())["identify"]["messages_in"] >= 8
                    and _stages(view())["gate"]["messages_in"] >= len(predicted)
                ),
                60,
                view,
            )

            stages = _stages(show_pipeline(context, "digits-cascade"))
            gate, classify, identify = stages["gate"], stages["classify"], stages["identify"]
            assert gate["passed"] + gate["filtered"] == gate["messages_in"] > 0
            # The device ran the same int8 model in the same runtime on the replayed windows in order,
            # from wherever the replay stood when the stage was configured.
            n, m = len(predicted), gate["messages_in"]
            possible = {sum(predicted[(o + i) % n] == common for i in range(m)) for o in range(n)}
            assert gate["filtered"] in possible and gate["filtered"] > 0
            # Nodes are read one after another and a gateway counts a message before the gate hears its
            # answer, so a stage never takes in more than the stage before it let through.
            assert classify["messages_in"] <= gate["passed"] and gate["messages_out"] <= gate["passed"]
            assert classify["passed"] == classify["messages_in"] and classify["filtered"] == 0
            assert identify["messages_in"] <= classify["passed"]
            assert (
                identify["labelled"] == identify["messages_in"]
                and identify["correct"] <= identify["labelled"]
            )
            assert gate["hop_latency_ms"] >= 30.0, "the BLE profile's one-way latency is 30 ms"
            # A window reaches the last stage over BLE (30 ms one way at least) and Wi-Fi (3 ms).
            assert identify["end_to_end_ms"] >= 33.0
            assert all(s["offline"] == [] and s["reported"] == len(s["nodes"]) for s in stages.values())
            # The classify stage is parallel: the gate spreads its messages over both gateways.
            await _until(
                lambda: all(view()["nodes"][n]["counters"]["messages_in"] > 0 for n in ("gw-1", "gw-2")),
                30,
                lambda: {n: view()["nodes"][n] for n in ("gw-1", "gw-2")},
            )
            assert any("measured" in basis or "estimate" in basis for basis in gate["latency_basis"])

            # The gateway goes away mid-pipeline: the stage shows it, the gate keeps what it passes in
            # its outbox, and once the gateway is back (listening on another port) all of it arrives.
            await agents["gw-1"].stop()
            await _until(
                lambda: (
                    _stages(view())["classify"]["offline"] == ["gw-1"]
                    and _stages(view())["gate"]["outbox"] >= 3
                ),
                30,
                view,
            )
            queued = _stages(view())["gate"]["passed"]
            agents["gw-1"] = await start("gw-1")
            await _until(lambda: _stages(view())["gate"]["messages_out"] >= queued, 60, view)
            assert _stages(view())["classify"]["offline"] == []

            _, secret = create_token(context, Role.VIEWER, "pipeline reader")
            with TestClient(create_api(context)) as client:
                response = client.get(
                    "/api/v1/pipelines/digits-cascade", headers={"Authorization": f"Bearer {secret}"}
                )
            assert response.status_code == 200
            api_stages = {s["name"]: s for s in response.json()["stages"]}
            assert api_stages["identify"]["messages_in"] >= 8
            assert "keys" not in response.text and "hop_key" not in response.text

            stop_pipeline(context, "digits-cascade")

            async def cleared() -> bool:
                values = await fleet.server.devices.read("gw-1", "/26242/0/0")
                return values[ObjectPath(26242, 0, 0)] == ""

            async with asyncio.timeout(30):
                while not await cleared():
                    await asyncio.sleep(0.2)

    asyncio.run(asyncio.wait_for(scenario(), 240))


SPLIT = """
name = "digits-split"
[[stages]]
name = "head"
split = "{plan}"
part = "head"
nodes = ["head-1"]
link = "ble"
[[stages]]
name = "tail"
split = "{plan}"
part = "tail"
nodes = ["tail-1"]
"""


def test_a_split_model_runs_as_a_native_head_on_the_mcu_and_a_litert_tail_on_the_gateway(
    digits_cnn_store, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    context, _ = digits_cnn_store
    recording, _ = _recording(context, tmp_path / "digits.npz")
    plan = plan_model_split(context, "digits-cnn", "nano33ble:ble:rpi4")
    interior = [c["index"] for c in plan["candidates"] if 0 < c["index"] < plan["operators"]]
    build_split(context, plan["id"], cut=interior[0])

    async def scenario() -> None:
        nodes = (("head-1", "nano33ble:native"), ("tail-1", "rpi4"))
        async with _nodes(context, tmp_path, nodes, recording) as (_fleet, _agents, _start):
            create_pipeline(context, SPLIT.format(plan=plan["id"]), fmt="toml")
            applied = apply_pipeline(context, "digits-split")
            assert set(applied["campaigns"]) == {"head", "tail"}

            def view() -> dict[str, Any]:
                return show_pipeline(context, "digits-split")

            await _until(lambda: view()["state"] == "running", 90, view)
            await _until(lambda: _stages(view())["tail"]["messages_in"] >= 12, 60, view)
            head, tail = _stages(view())["head"], _stages(view())["tail"]
            # A split head passes its cut tensor on whatever it is: no condition, nothing filtered.
            assert head["filtered"] == 0 and head["passed"] == head["messages_in"]
            assert tail["labelled"] == tail["messages_in"] >= 12
            assert any("QEMU" in basis for basis in head["latency_basis"]), head["latency_basis"]

    asyncio.run(asyncio.wait_for(scenario(), 240))
