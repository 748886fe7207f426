"""The pipeline part of the demo: the seed's journey, a camera frame passed from a microcontroller to a
gateway to the cloud only as far as it needs to go.

Most frames a camera sees are empty, and the model that tells an object from a face is too big for a
microcontroller's flash. So a nano33ble replays the scenes test split as a labelled camera and runs
the tiny gate model on every frame; only frames with something in them cross an emulated BLE link to
an rpi4 gateway, whose MobileNet passes only faces over Wi-Fi to an x86-64 host that confirms them.

It goes through what an operator uses (``provision_device``, ``create_pipeline``, ``apply_pipeline``,
``show_pipeline``) on real agents: the nodes get their modules through the stage campaigns and their
stage over LwM2M, and every count it hands back is one the nodes reported, never one of its own.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tinymlaas.agent import Agent
from tinymlaas.agent.sensors import ReplaySource
from tinymlaas.cli.demo_fleet import fitting_module
from tinymlaas.deploy.pipelines import PipelineState
from tinymlaas.deploy.signing import load_or_create_signing_key
from tinymlaas.errors import NotFound, RuntimeFailure
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.fleet import list_devices
from tinymlaas.services.models import show_model
from tinymlaas.services.pipelines import apply_pipeline, create_pipeline, show_pipeline, stop_pipeline
from tinymlaas.services.provisioning import provision_device

__all__ = [
    "CLASSIFIER_BOARDS",
    "GATE_BOARDS",
    "PIPELINE",
    "SCENES",
    "JourneyModels",
    "declared_models",
    "model_ref",
    "run_scenes_journey",
    "savings",
]

PIPELINE = "scenes-journey"
SCENES = "scenes"
GATE_BOARDS = ("nano33ble",)
CLASSIFIER_BOARDS = ("rpi4", "x86-64-host")
GATE, GATEWAY, CLOUD = "demo-gate", "demo-gateway", "demo-cloud"
# Where a window a stage filtered stayed: the sentence each stage's saving is told in.
_KEPT_ON = {"gate": "the device", "classify": "the gateway"}
# A battery camera waking every other second: about what the BLE profile carries (a 9 KiB int8 frame
# takes 1.3-1.8 s), so the gate's outbox does not grow while the demo holds.
_FRAMES_PER_S = 0.5
_RESULTS = 3  # results the last stage reports before the demo prints the table

Say = Callable[[str, Any], None]


@dataclass(frozen=True)
class JourneyModels:
    """The two scenes models the pipeline declares, each as ``name:version``."""

    gate: str
    classifier: str


def _declaration(models: JourneyModels) -> str:
    return f"""
name = "{PIPELINE}"
[[stages]]
name = "gate"
model = "{models.gate}"
nodes = ["{GATE}"]
condition = "not:background"
link = "ble"
[[stages]]
name = "classify"
model = "{models.classifier}"
nodes = ["{GATEWAY}"]
condition = "label:face"
link = "wifi"
[[stages]]
name = "confirm"
model = "{models.classifier}"
nodes = ["{CLOUD}"]
"""


def declared_models(ctx: Context) -> JourneyModels | None:
    """The models an earlier demo declared the pipeline with, or None on a store without it.

    A declaration cannot change once stored, so a second run of the demo applies the pipeline again
    on those models rather than training ones the pipeline could not name.
    """
    try:
        spec = show_pipeline(ctx, PIPELINE)["spec"]
    except NotFound:
        return None
    stages = {stage["name"]: stage for stage in spec["stages"]}
    return JourneyModels(stages["gate"]["model"], stages["classify"]["model"])


def model_ref(ctx: Context, report: dict[str, Any]) -> str:
    """A lifecycle report's model as ``name:version``, how a declaration reads best."""
    model = show_model(ctx, report["model"])
    return f"{model.name}:{model.version}"


def _recording(ctx: Context, gate: str, path: Path) -> Path:
    """The test split the gate model never trained on, as a labelled recording for the camera to replay."""
    run = show_model(ctx, gate).run
    if run is None:
        raise RuntimeFailure(f"model {gate} has no training run whose test split the camera could replay")
    datasets = DatasetService(ctx)
    loaded = datasets.load(run["snapshot"], seed=int(run["recipe"].get("seed", ctx.settings.seed)))
    labels = np.array([loaded.spec.labels[int(y)] for y in loaded.arrays.y_test])
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x=loaded.arrays.x_test, y=labels)
    return path


def _gate_runtime(ctx: Context, gate: str) -> str:
    """The runtime the gate's board runs: native where the gate's native module fits, as the fleet's."""
    model = show_model(ctx, gate)
    rows = [
        {"board": m.board, "fits": m.fits, "runtime": m.runtime, "quantization": "int8"}
        for m in model.modules
        if m.variant in {v.id for v in model.variants if v.quantization == "int8"}
    ]
    return str(fitting_module({"model": gate, "variants": rows}, GATE_BOARDS[0])["runtime"])


async def _until(
    ctx: Context, check: Callable[[dict[str, Any]], bool], timeout: float, waiting_for: str
) -> dict[str, Any]:
    """The pipeline's view once ``check`` holds; RuntimeFailure with its state and error at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        view = await asyncio.to_thread(show_pipeline, ctx, PIPELINE)
        if check(view):
            return view
        if view["state"] == PipelineState.FAILED.value or time.monotonic() > deadline:
            raise RuntimeFailure(
                f"pipeline {PIPELINE} is {view['state']} while waiting for {waiting_for}: {view['error']}"
            )
        await asyncio.sleep(0.5)


async def _registered(ctx: Context, endpoints: set[str], timeout: float) -> None:
    """Wait until every node reported its runtime: applying picks each node's module by it."""
    deadline = time.monotonic() + timeout
    while True:
        devices = await asyncio.to_thread(list_devices, ctx)
        ready = {d.endpoint for d in devices if d.online and d.capabilities.get("runtime")}
        if endpoints <= ready:
            return
        if time.monotonic() > deadline:
            raise RuntimeFailure(f"nodes did not report within {timeout:g} s: {sorted(endpoints - ready)}")
        await asyncio.sleep(0.25)


def _apply(ctx: Context, models: JourneyModels) -> dict[str, Any]:
    """Declare the pipeline on a store without it, else take up the earlier run's on these fresh nodes."""
    try:
        view = show_pipeline(ctx, PIPELINE)
    except NotFound:
        create_pipeline(ctx, _declaration(models), fmt="toml")
    else:
        if view["state"] == PipelineState.APPLYING.value:
            stop_pipeline(ctx, PIPELINE)  # an interrupted apply: applying starts over from a stop
    return apply_pipeline(ctx, PIPELINE)


def _last_has_results(view: dict[str, Any]) -> bool:
    stages = view["stages"]
    return view["state"] == PipelineState.RUNNING.value and stages[-1]["messages_in"] >= _RESULTS


def savings(view: dict[str, Any]) -> list[str]:
    """One sentence per stage on the traffic the cascade saved, from the counts the nodes reported."""
    sentences = []
    stages = view["stages"]
    first = stages[0]["messages_in"]
    for stage in stages:
        seen = stage["messages_in"]
        if stage is stages[-1]:
            share = 100 * seen / first if first else 0.0
            sentences.append(
                f"{stage['name']}: {seen} of the {first} windows the device saw ({share:.0f} %) "
                f"reached {', '.join(stage['nodes'])}"
            )
            continue
        share = 100 * stage["filtered"] / seen if seen else 0.0
        kept_on = _KEPT_ON.get(stage["name"], ", ".join(stage["nodes"]))
        sentences.append(
            f"{stage['name']}: {stage['filtered']} of {seen} windows ({share:.0f} %) never left {kept_on}"
        )
    return sentences


@asynccontextmanager
async def run_scenes_journey(
    ctx: Context,
    models: JourneyModels,
    server_uri: str,
    *,
    state_dir: Path,
    say: Say,
    timeout: float = 180.0,
) -> AsyncIterator[dict[str, Any]]:
    """Start the three nodes, apply the pipeline and wait for its results; it keeps running inside.

    ``say("pipeline", view)`` hears the pipeline once its last stage has results; the view is also
    what the context yields. The nodes stop on leaving, so the caller holds inside for as long as
    the pipeline should be seen running.
    """
    shutil.rmtree(state_dir, ignore_errors=True)  # factory-fresh nodes, as the fleet's
    recording = await asyncio.to_thread(_recording, ctx, models.gate, state_dir / "scenes-test.npz")
    gate_board = ctx.catalog.board(GATE_BOARDS[0]).running(
        await asyncio.to_thread(_gate_runtime, ctx, models.gate)
    )
    nodes = (
        (GATE, gate_board),
        (GATEWAY, ctx.catalog.board(CLASSIFIER_BOARDS[0])),
        (CLOUD, ctx.catalog.board(CLASSIFIER_BOARDS[1])),
    )
    key = load_or_create_signing_key(ctx.settings.keys_dir)
    agents: list[Agent] = []
    try:
        for endpoint, board in nodes:
            agents.append(
                await Agent.start(
                    board,
                    endpoint,
                    server_uri,
                    state_dir / endpoint,
                    key.public_key_bytes(),
                    sensor=ReplaySource(recording) if endpoint == GATE else None,
                    rate_hz=_FRAMES_PER_S,
                    telemetry_interval=1.0,
                    credentials=provision_device(ctx, endpoint, board.id, server_uri=server_uri, rotate=True),
                )
            )
        await _registered(ctx, {endpoint for endpoint, _ in nodes}, timeout)
        applied = await asyncio.to_thread(_apply, ctx, models)
        say("applied", applied)
        view = await _until(ctx, _last_has_results, timeout, "results at its last stage")
        say("pipeline", view)
        yield view
    finally:
        for agent in agents:
            await agent.stop()
