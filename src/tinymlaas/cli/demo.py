"""``tinymlaas demo``: the server with its dashboard, the lifecycle as background jobs, then a fleet update.

Everything goes through the services an operator's server uses: the lifecycle of each built-in dataset
is a ``lifecycle`` job run by the server's job executor (so it shows on the dashboard while it runs),
and the fleet story deploys through campaigns to emulated devices over LwM2M. Unless ``--no-wait`` is
given, the server and the devices stay up afterwards until Ctrl-C, for exploring the dashboard.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

import typer
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn

from tinymlaas.api.app import API_PREFIX
from tinymlaas.cli._shared import console, err_console, get_context, print_recovered
from tinymlaas.cli.campaigns import print_campaign
from tinymlaas.cli.demo_fleet import DEMO_FLEET_BOARDS, run_fleet_demo
from tinymlaas.cli.devices import devices_table
from tinymlaas.cli.lifecycle import comparison_table
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
_POLL_S = 0.5  # how often the demo reads its job's progress back from the store


def _ensure_dataset(context: Context, name: str) -> None:
    service = DatasetService(context)
    try:
        service.show(name)
    except NotFound:
        report = service.generate(name, name, samples=None, seed=context.settings.seed)
        err_console.print(f"generated dataset [bold]{name}[/] ({report.added} samples)")


async def _lifecycle(
    context: Context, http: HttpServer, name: str, boards: list[str], epochs: int | None, seed: int
) -> dict[str, Any]:
    """Run one lifecycle as a background job and follow its progress as the dashboard does."""
    await asyncio.to_thread(_ensure_dataset, context, name)
    params: dict[str, Any] = {"dataset": name, "boards": boards, "seed": seed, "epochs": epochs}
    job = submit_job(context, JobKind.LIFECYCLE, params, executor=http.executor)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task(f"{name} ({job['id']})", total=1.0, status="queued")
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


def _admin_token(context: Context) -> str:
    """The first admin token on a fresh store; otherwise a new one, since the first was shown only once."""
    return ensure_first_admin(context) or create_token(context, Role.ADMIN, "tinymlaas demo")[1]


async def _until_interrupted() -> None:
    err_console.print("the dashboard stays up with the devices running; press Ctrl-C to stop")
    await asyncio.Event().wait()


async def _demo(
    context: Context,
    http: HttpServer,
    datasets: list[str],
    boards: list[str],
    fleet: bool,
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
        await run_fleet_demo(
            context,
            first,
            second,
            per_board=per_board,
            state_dir=context.settings.demo_fleet_dir,
            say=_say,
            hold=_until_interrupted if wait else None,
            attach=http.attach_devices,
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
        True, "--fleet/--no-fleet", help="Then run emulated devices and deploy, refuse, roll back, update."
    ),
    per_board: int = typer.Option(2, "--devices-per-board", min=1, help="Emulated devices per fleet board."),
    epochs: int | None = typer.Option(None, help="Training epochs (default: each recipe's own)."),
    http_port: int | None = typer.Option(
        None, "--http-port", min=0, max=65535, help="Dashboard and REST API port (default 8000; 0 picks one)."
    ),
    wait: bool = typer.Option(
        True, "--wait/--no-wait", help="Keep the server and devices up at the end until Ctrl-C."
    ),
) -> None:
    """Start the server with its dashboard, run the lifecycle for each built-in dataset, update a fleet.

    The URL and an admin token to log in with are printed first. Each lifecycle runs as a background
    job; the fleet part starts devices on nano33ble, pico and rpi4, deploys each board the gestures
    module that fits it, shows the compatibility gate refusing a module, a device rolling back after a
    failed self-test, and the fleet updated to a second model version.
    """
    context = get_context(ctx)
    settings = context.settings
    http = HttpServer(context, settings.http_host, settings.http_port if http_port is None else http_port)
    args = (datasets.split(","), boards.split(","), fleet, per_board, epochs, wait)
    asyncio.run(_run(context, http, *args))
    console.print(f"data directory: {settings.data_dir}")
