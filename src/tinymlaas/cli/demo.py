"""``tinymlaas demo``: the offline lifecycle for the built-in datasets, then a fleet taking two updates."""

from __future__ import annotations

import asyncio
from typing import Any

import typer

from tinymlaas.cli._shared import console, epoch_progress, err_console, get_context
from tinymlaas.cli.campaigns import print_campaign
from tinymlaas.cli.devices import devices_table
from tinymlaas.cli.lifecycle import comparison_table
from tinymlaas.errors import NotFound
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.fleet_demo import DEMO_FLEET_BOARDS, run_fleet_demo
from tinymlaas.services.lifecycle import run_lifecycle

DEMO_DATASETS = ("sine", "gestures", "digits")
DEMO_BOARDS = "nano33ble,pico,coralmicro,rpi4"
FLEET_DATASET = "gestures"


def _lifecycle(context: Context, name: str, boards: list[str], epochs: int | None, seed: int) -> dict:
    service = DatasetService(context)
    try:
        service.show(name)
    except NotFound:
        report = service.generate(name, name, samples=None, seed=context.settings.seed)
        err_console.print(f"generated dataset [bold]{name}[/] ({report.added} samples)")
    with epoch_progress(True, name) as (on_epoch, on_message):
        report = run_lifecycle(
            context, name, boards, epochs=epochs, seed=seed, on_epoch=on_epoch, progress=on_message
        )
    console.print(comparison_table(report))
    return report


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
                f"campaign {data['id']}: module {data['module']} to {data['selector']} "
                f"(stages {','.join(map(str, data['stages']))} %)",
                highlight=False,
            )
        case "progress":
            console.print(f"  {data['done']}/{data['targets']} done, {data['state']}", highlight=False)
        case "outcome":
            console.print("[bold]a model that fails its self-test on the device[/]:")
            print_campaign(data)


def demo(
    ctx: typer.Context,
    datasets: str = typer.Option(",".join(DEMO_DATASETS), help="Built-in generators to run."),
    boards: str = typer.Option(DEMO_BOARDS, help="Comma-separated board ids."),
    fleet: bool = typer.Option(
        True, "--fleet/--no-fleet", help="Then run emulated devices and deploy, refuse, roll back, update."
    ),
    per_board: int = typer.Option(2, "--devices-per-board", min=1, help="Emulated devices per fleet board."),
    epochs: int | None = typer.Option(None, help="Training epochs (default: each recipe's own)."),
) -> None:
    """Run the lifecycle for each built-in dataset on each board, then update a fleet of emulated devices.

    The fleet part starts an LwM2M server and devices on nano33ble, pico and rpi4, deploys each board
    the module of the gestures model that fits it, shows the compatibility gate refusing a module,
    a device rolling back after a failed self-test, and the fleet updated to a second model version.
    """
    context = get_context(ctx)
    board_ids = boards.split(",")
    seed = context.settings.seed
    reports = {name: _lifecycle(context, name, board_ids, epochs, seed) for name in datasets.split(",")}
    if fleet:
        first = reports.get(FLEET_DATASET)
        if first is None or not set(DEMO_FLEET_BOARDS) <= set(board_ids):
            first = _lifecycle(context, FLEET_DATASET, list(DEMO_FLEET_BOARDS), epochs, seed)
        err_console.print(f"training version 2 of the {FLEET_DATASET} model for the fleet update")
        second = _lifecycle(context, FLEET_DATASET, list(DEMO_FLEET_BOARDS), epochs, seed + 1)
        state_dir = context.settings.data_dir / "demo-fleet"
        asyncio.run(
            run_fleet_demo(context, first, second, per_board=per_board, state_dir=state_dir, say=_say)
        )
    console.print(f"data directory: {context.settings.data_dir}")
