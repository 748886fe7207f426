"""``tinymlaas pipeline show``: the lifecycle's steps as stored, and the latest dry run phase by phase."""

from __future__ import annotations

import typer
from rich.table import Table

from tinymlaas.cli._shared import console, fmt_bytes, fmt_metric, get_context, print_json
from tinymlaas.jobs.pipeline import Step, Tone, show_pipeline

app = typer.Typer(help="The lifecycle from data to devices, step by step.", no_args_is_help=True)

_TONE_STYLE = {Tone.GOOD: "green", Tone.BUSY: "cyan", Tone.BAD: "red"}


def _steps_table(title: str, steps: list[Step]) -> Table:
    table = Table(title=title)
    for column in ("step", "state", "what", "detail"):
        table.add_column(column)
    for step in steps:
        style = _TONE_STYLE.get(step.tone)
        state = f"[{style}]{step.state.value}[/]" if style else step.state.value
        table.add_row(step.title, state, step.headline, step.detail)
    return table


@app.command("show")
def show(
    ctx: typer.Context,
    job: str | None = typer.Option(
        None, help="The lifecycle job to show as the dry run; the newest if not given."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show each step's state from what is stored, and a dry run's phases and fit verdicts."""
    pipeline = show_pipeline(get_context(ctx), job)
    if as_json:
        print_json(pipeline.model_dump(mode="json"))
        return
    console.print(_steps_table("The lifecycle, as stored", pipeline.steps))
    run = pipeline.dry_run
    if run is None:
        console.print("No dry run yet: a lifecycle job is one (the dashboard's Pipeline page starts one).")
        return
    console.print(_steps_table(f"Dry run {run.job} on {run.dataset}: {run.state.value}", run.steps))
    if run.error:
        console.print(f"[red]error:[/] {run.error}", highlight=False, soft_wrap=True)
    if run.verdicts:
        verdicts = Table(title="Fit per board")
        for column in ("board", "variant", "runtime", "metric", "flash", "RAM", "fits"):
            verdicts.add_column(column)
        for v in run.verdicts:
            verdicts.add_row(
                v.board,
                v.quantization,
                v.runtime,
                fmt_metric(v.metric),
                fmt_bytes(v.flash_bytes),
                fmt_bytes(v.ram_bytes),
                "[green]yes[/]" if v.fits else f"[red]no[/]: {'; '.join(v.reasons)}",
            )
        console.print(verdicts)
