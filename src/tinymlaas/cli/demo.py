"""``tinymlaas demo``: the server with its dashboard, the lifecycle as background jobs, a fleet update,
then a pipeline of models across three nodes.

Everything goes through the services an operator's server uses: the lifecycle of each built-in dataset
is a ``lifecycle`` job run by the server's job executor (so it shows on the dashboard while it runs),
the fleet story deploys through campaigns to emulated devices over LwM2M, and the pipeline is declared,
applied and read back through the pipelines service on the same LwM2M server. Unless ``--no-wait`` is
given, the server, the devices and the pipeline stay up afterwards until Ctrl-C, for exploring the
dashboard.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from functools import partial
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from tinymlaas.api.app import API_PREFIX
from tinymlaas.cli._shared import console, err_console, get_context, print_recovered
from tinymlaas.cli.campaigns import print_campaign
from tinymlaas.cli.demo_fleet import DEMO_FLEET_BOARDS, run_fleet_demo
from tinymlaas.cli.demo_pipeline import (
    CLASSIFIER_BOARDS,
    GATE_BOARDS,
    PIPELINE,
    SCENES,
    JourneyModels,
    declared_models,
    model_ref,
    run_scenes_journey,
    savings,
)
from tinymlaas.cli.devices import devices_table
from tinymlaas.cli.lifecycle import comparison_table
from tinymlaas.cli.pipelines import stages_table
from tinymlaas.errors import NotFound, RuntimeFailure
from tinymlaas.jobs import TERMINAL_STATES, JobKind, JobState
from tinymlaas.jobs.service import show_job, submit_job
from tinymlaas.server.http import HttpServer
from tinymlaas.services.auth import Role, create_token, ensure_first_admin
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService

DEMO_DATASETS = ("sine", "gestures", "digits")
DEMO_BOARDS = "nano33ble,pico,coralmicro,rpi4"
FLEET_DATASET = "gestures"
# Samples a generated dataset gets where not its generator's default: fewer scenes frames shorten the
# MobileNet's squeeze, which runs the test split in TFLM and LiteRT; 720 leave 108 test frames, above
# the count under which the squeeze cross-validates (training five more models).
_SAMPLES = {SCENES: 720}
# Fewest epochs the scenes models train for: on 720 frames, fewer leave the MobileNet answering one
# class, and a cascade whose classifier never says "face" shows nothing beyond the gateway.
_SCENES_MIN_EPOCHS = 5
_POLL_S = 0.5  # how often the demo reads its job's progress back from the store


def _ensure_dataset(context: Context, name: str, samples: int | None) -> None:
    service = DatasetService(context)
    try:
        service.show(name)
    except NotFound:
        report = service.generate(name, name, samples=samples, seed=context.settings.seed)
        err_console.print(f"generated dataset [bold]{name}[/] ({report.added} samples)")


async def _lifecycle(
    context: Context,
    http: HttpServer,
    name: str,
    boards: list[str],
    epochs: int | None,
    seed: int,
    *,
    arch: str | None = None,
) -> dict[str, Any]:
    """Run one lifecycle as a background job and follow its progress as the dashboard does."""
    await asyncio.to_thread(_ensure_dataset, context, name, _SAMPLES.get(name))
    params: dict[str, Any] = {"dataset": name, "boards": boards, "seed": seed, "epochs": epochs}
    if arch is not None:
        params["arch"] = arch
    job = submit_job(context, JobKind.LIFECYCLE, params, executor=http.executor)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task(
            f"{name}{f' {arch}' if arch else ''} ({job['id']})", total=1.0, status="queued"
        )
        while JobState(job["state"]) not in TERMINAL_STATES:
            await asyncio.sleep(_POLL_S)
            job = await asyncio.to_thread(show_job, context, job["id"])
            progress.update(task, completed=job["progress"], status=job["message"] or "")
    if job["state"] != JobState.SUCCEEDED.value:
        raise RuntimeFailure(f"the {name} lifecycle job {job['id']} {job['state']}: {job['error']}")
    console.print(comparison_table(job["result"]))
    return job["result"]


def _say(kind: str, data: Any) -> None:
    """Render one step of the fleet demo as it happens."""
    match kind:
        case "server":
            console.print(f"\n[bold]LwM2M server[/] at {data['uri']}", highlight=False)
        case "devices":
            console.print(devices_table(data, title="What the devices report", presence=False))
        case "refused":
            console.print(
                f"[yellow]refused by the compatibility gate[/]: module {data['module']} to board "
                f"{data['board']} — {data['reason']}",
                highlight=False,
                soft_wrap=True,
            )
        case "campaign":
            console.print(
                f"campaign {data.id}: module {data.module} to {data.selector} "
                f"(stages {','.join(map(str, data.stages))} %)",
                highlight=False,
            )
        case "progress":
            console.print(f"  {data.done}/{data.targets} done, {data.state}", highlight=False)
        case "outcome":
            console.print("[bold]a model that fails its self-test on the device[/]:")
            print_campaign(data)
        case "applied":
            console.print(f"\n[bold]pipeline {data['name']}[/], applied through one campaign per stage:")
            for stage in data["spec"]["stages"]:
                condition = f", passes on {stage['condition']}" if stage["condition"] else ""
                link = f" over {stage['link']}" if stage["link"] else ""
                console.print(
                    f"  {stage['name']}: {stage['model']} on {', '.join(stage['nodes'])}{condition}{link}"
                    f" (campaign {', '.join(data['campaigns'][stage['name']])})",
                    highlight=False,
                    soft_wrap=True,
                )
        case "pipeline":
            console.print(stages_table(data))
            for sentence in savings(data):
                console.print(sentence, highlight=False)
            console.print("[dim]counts as each node reported them over LwM2M (object 26242)[/]")


def _admin_token(context: Context) -> str:
    """The first admin token on a fresh store; otherwise a new one, since the first was shown only once."""
    return ensure_first_admin(context) or create_token(context, Role.ADMIN, "tinymlaas demo")[1]


async def _until_interrupted() -> None:
    err_console.print("the dashboard stays up with the devices running; press Ctrl-C to stop")
    await asyncio.Event().wait()


async def _journey_models(context: Context, http: HttpServer, epochs: int | None, seed: int) -> JourneyModels:
    """The gate for the microcontroller and the MobileNet for the gateway and the cloud, trained on
    scenes with the same seed (so on the same split, scaled alike, as a cascade's stages must be)."""
    declared = await asyncio.to_thread(declared_models, context)
    if declared is not None:
        err_console.print(f"pipeline {PIPELINE} is declared on {declared.gate} and {declared.classifier}")
        return declared
    epochs = None if epochs is None else max(epochs, _SCENES_MIN_EPOCHS)
    gate = await _lifecycle(context, http, SCENES, list(GATE_BOARDS), epochs, seed, arch="gate")
    classifier = await _lifecycle(
        context, http, SCENES, list(CLASSIFIER_BOARDS), epochs, seed, arch="mobilenet"
    )
    return JourneyModels(
        await asyncio.to_thread(model_ref, context, gate),
        await asyncio.to_thread(model_ref, context, classifier),
    )


async def _demo(
    context: Context,
    http: HttpServer,
    datasets: list[str],
    boards: list[str],
    fleet: bool,
    pipeline: bool,
    per_board: int,
    epochs: int | None,
    wait: bool,
) -> None:
    print_recovered(await http.start())
    console.print(f"dashboard on {http.url}/ (REST API under {http.url}{API_PREFIX})", highlight=False)
    console.print(
        f"admin API token (log in with it): {_admin_token(context)}", highlight=False, soft_wrap=True
    )
    seed = context.settings.seed
    reports = {name: await _lifecycle(context, http, name, boards, epochs, seed) for name in datasets}
    if fleet:
        first = reports.get(FLEET_DATASET)
        if first is None or not set(DEMO_FLEET_BOARDS) <= set(boards):
            first = await _lifecycle(context, http, FLEET_DATASET, list(DEMO_FLEET_BOARDS), epochs, seed)
        err_console.print(f"training version 2 of the {FLEET_DATASET} model for the fleet update")
        second = await _lifecycle(context, http, FLEET_DATASET, list(DEMO_FLEET_BOARDS), epochs, seed + 1)
        journey: Callable[[str], AbstractAsyncContextManager[object]] | None = None
        if pipeline:
            models = await _journey_models(context, http, epochs, seed)
            state_dir = context.settings.data_dir / "demo-pipeline"
            journey = partial(run_scenes_journey, context, models, state_dir=state_dir, say=_say)

        await run_fleet_demo(
            context,
            first,
            second,
            per_board=per_board,
            state_dir=context.settings.demo_fleet_dir,
            say=_say,
            hold=_until_interrupted if wait else None,
            attach=http.attach_devices,
            alongside=journey,
        )
    elif wait:
        await _until_interrupted()


async def _run(context: Context, http: HttpServer, *args: Any) -> None:
    """Ctrl-C or SIGTERM cancels the demo wherever it is; the server and devices then stop cleanly."""
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, main.cancel)
    try:
        await _demo(context, http, *args)
    except asyncio.CancelledError:
        err_console.print("stopping", style="dim")
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await http.stop()


def demo(
    ctx: typer.Context,
    datasets: str = typer.Option(",".join(DEMO_DATASETS), help="Built-in generators to run."),
    boards: str = typer.Option(DEMO_BOARDS, help="Comma-separated board ids."),
    fleet: bool = typer.Option(
        True,
        "--fleet/--no-fleet",
        help="Then run emulated devices and deploy, refuse, roll back, update "
        "(--no-fleet skips the pipeline too).",
    ),
    pipeline: bool = typer.Option(
        True,
        "--pipeline/--no-pipeline",
        help="After the fleet, run a three-node cascade on scenes (gate on a nano33ble, MobileNet beyond).",
    ),
    per_board: int = typer.Option(2, "--devices-per-board", min=1, help="Emulated devices per fleet board."),
    epochs: int | None = typer.Option(
        None,
        help=f"Training epochs (default: each recipe's own; the pipeline's scenes models at least "
        f"{_SCENES_MIN_EPOCHS}).",
    ),
    http_port: int | None = typer.Option(
        None, "--http-port", min=0, max=65535, help="Dashboard and REST API port (default 8000; 0 picks one)."
    ),
    wait: bool = typer.Option(
        True, "--wait/--no-wait", help="Keep the server and devices up at the end until Ctrl-C."
    ),
) -> None:
    """Start the server with its dashboard, run the lifecycle for each built-in dataset, update a fleet,
    run a pipeline.

    The URL and an admin token to log in with are printed first. Each lifecycle runs as a background
    job; the fleet part starts devices on nano33ble, pico and rpi4, deploys each board the gestures
    module that fits it, shows the compatibility gate refusing a module, a device rolling back after a
    failed self-test, and the fleet updated to a second model version. The pipeline part trains a gate
    and a MobileNet on scenes and cascades camera frames from a nano33ble over BLE to an rpi4 gateway
    and over Wi-Fi to a host, printing how many frames each stage kept from going further.
    """
    context = get_context(ctx)
    settings = context.settings
    http = HttpServer(context, settings.http_host, settings.http_port if http_port is None else http_port)
    args = (datasets.split(","), boards.split(","), fleet, pipeline, per_board, epochs, wait)
    asyncio.run(_run(context, http, *args))
    console.print(f"data directory: {settings.data_dir}")
