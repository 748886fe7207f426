"""What every command shares: the service context from global options, consoles, renderers."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import typer
from pydantic_core import to_jsonable_python
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tinymlaas.formatting import fmt_bytes, fmt_cross_validation, fmt_drop, fmt_metric, variant_label
from tinymlaas.jobs import Recovered
from tinymlaas.services.context import Context

__all__ = [
    "console",
    "epoch_progress",
    "err_console",
    "fmt_bytes",
    "fmt_cross_validation",
    "fmt_metric",
    "get_context",
    "print_json",
    "print_recovered",
    "quality_cell",
    "variant_label",
]

# Written to a file or a pipe, output has no terminal to fit: Rich would assume 80 columns and cut
# table cells short ("float…" for both float32 and float16), so a log would lose what it is kept for.
FILE_WIDTH = 240


def _console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    fits_a_terminal = stream.isatty() or "COLUMNS" in os.environ
    return Console(stderr=stderr, width=None if fits_a_terminal else FILE_WIDTH)


console = _console()
# Progress and status go to stderr so that ``--json`` output on stdout stays machine-readable.
err_console = _console(stderr=True)


def get_context(ctx: typer.Context) -> Context:
    return ctx.find_root().obj


def print_json(data: Any) -> None:
    """``data`` as indented JSON; typed service results print as the API returns them."""
    typer.echo(json.dumps(to_jsonable_python(data, fallback=str), indent=2))


@contextmanager
def epoch_progress(
    enabled: bool, label: str
) -> Iterator[tuple[Callable[[int, int, dict[str, float]], None], Callable[[str], None]]]:
    """A Rich progress bar for training epochs plus a status line for the phases after it."""
    if not enabled:
        yield (lambda *_args: None), (lambda _message: None)
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("epochs"),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=False) as progress:
        task = progress.add_task(label, total=None, status="preparing")

        def on_epoch(epoch: int, total: int, logs: dict[str, float]) -> None:
            status = "  ".join(
                f"{k}={v:.4f}" for k, v in logs.items() if k in ("loss", "val_loss", "accuracy")
            )
            progress.update(task, completed=epoch, total=total, status=status)

        def on_message(message: str) -> None:
            progress.update(task, status=message)

        yield on_epoch, on_message


def print_recovered(recovered: Recovered) -> None:
    """Say what a starting server did with the jobs the last one left, if it left any."""
    if recovered.failed or recovered.queued:
        err_console.print(
            f"jobs left by the last server: {len(recovered.failed)} marked failed, "
            f"{len(recovered.queued)} queued again",
            style="dim",
        )


def quality_cell(variant: dict[str, Any], note: int | None = None) -> str:
    """The quality verdict against the float model, red when degraded (``note``: its footnote)."""
    if variant.get("drop") is None:
        return "—"
    if variant.get("degraded"):
        return f"[red]degraded[/] {fmt_drop(variant)}" + (f" \\[{note}]" if note else "")
    return f"ok {fmt_drop(variant)}"
