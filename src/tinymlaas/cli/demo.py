"""``tinymlaas demo``: the offline lifecycle for the built-in datasets on the seeds' boards."""

from __future__ import annotations

import typer

from tinymlaas.cli._shared import console, epoch_progress, err_console, get_context
from tinymlaas.cli.lifecycle import comparison_table
from tinymlaas.errors import NotFound
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.lifecycle import run_lifecycle

DEMO_DATASETS = ("sine", "gestures", "digits")
DEMO_BOARDS = "nano33ble,pico,coralmicro,rpi4"


def demo(
    ctx: typer.Context,
    datasets: str = typer.Option(",".join(DEMO_DATASETS), help="Built-in generators to run."),
    boards: str = typer.Option(DEMO_BOARDS, help="Comma-separated board ids."),
) -> None:
    """Generate the built-in datasets (once) and run the whole lifecycle for each on each board."""
    context = get_context(ctx)
    service = DatasetService(context)
    board_ids = boards.split(",")
    for name in datasets.split(","):
        try:
            service.show(name)
        except NotFound:
            report = service.generate(name, name, samples=None, seed=context.settings.seed)
            err_console.print(f"generated dataset [bold]{name}[/] ({report.added} samples)")
        with epoch_progress(True, name) as (on_epoch, on_message):
            report = run_lifecycle(context, name, board_ids, on_epoch=on_epoch, progress=on_message)
        console.print(comparison_table(report))
    console.print(f"data directory: {context.settings.data_dir}")
