"""``tinymlaas pipelines``: declare, apply, show and stop multi-node pipelines of models."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from tinymlaas.cli._shared import console, get_context, print_json
from tinymlaas.errors import InvalidInput
from tinymlaas.services.pipelines import (
    apply_pipeline,
    create_pipeline,
    list_pipelines,
    show_pipeline,
    stop_pipeline,
)

app = typer.Typer(
    help="Pipelines of models across nodes: cascades and parallel stages.", no_args_is_help=True
)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def stages_table(pipeline: dict[str, Any]) -> Table:
    table = Table(title=f"Pipeline {pipeline['name']} ({pipeline['state']})")
    for column in (
        "stage",
        "nodes",
        "in",
        "out",
        "passed",
        "filtered",
        "outbox",
        "msg/s",
        "hop ms",
        "compute ms",
        "end-to-end ms",
        "correct",
    ):
        table.add_column(column)
    for stage in pipeline["stages"]:
        offline = set(stage["offline"])
        nodes = ", ".join(f"[red]{n} (offline)[/]" if n in offline else n for n in stage["nodes"])
        table.add_row(
            stage["name"],
            nodes,
            str(stage["messages_in"]),
            str(stage["messages_out"]),
            str(stage["passed"]),
            str(stage["filtered"]),
            str(stage["outbox"]),
            f"{stage['messages_per_s']:.2f}",
            _ms(stage["hop_latency_ms"]),
            _ms(stage["compute_ms"]),
            _ms(stage["end_to_end_ms"]),
            f"{stage['correct']}/{stage['labelled']}" if stage["labelled"] else "—",
        )
    return table


def _print(pipeline: dict[str, Any]) -> None:
    console.print(stages_table(pipeline))
    if pipeline["error"]:
        console.print(f"[red]{pipeline['error']}[/]")
    for stage in pipeline["stages"]:
        for basis in stage["latency_basis"]:
            console.print(f"[dim]{stage['name']} compute: {basis}[/]")
    console.print("[dim]counts and latencies as each node reported them over LwM2M (object 26242)[/]")


@app.command("create")
def create(
    ctx: typer.Context,
    path: str = typer.Argument(..., help="A .toml or .json declaration, or - for TOML on stdin."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Declare a pipeline from a file; it is stored as a draft until applied."""
    if path == "-":
        text, fmt = sys.stdin.read(), "toml"
    else:
        file = Path(path)
        if not file.is_file():
            raise InvalidInput(f"{path}: no such file")
        fmt = "json" if file.suffix.lower() == ".json" else "toml"
        text = file.read_text()
    pipeline = create_pipeline(get_context(ctx), text, fmt=fmt)
    if as_json:
        print_json(pipeline)
        return
    console.print(
        f"pipeline [bold]{pipeline['name']}[/] ({pipeline['id']}) declared: "
        f"{len(pipeline['spec']['stages'])} stages"
    )


@app.command("apply")
def apply(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Pipeline id or name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Gate every node and start the stage campaigns; the server then configures the nodes."""
    pipeline = apply_pipeline(get_context(ctx), ref)
    if as_json:
        print_json(pipeline)
        return
    for stage, campaigns in pipeline["campaigns"].items():
        console.print(f"stage {stage}: campaign {', '.join(campaigns)}")
    console.print("applying: the server configures the nodes once every campaign completes")


@app.command("show")
def show(
    ctx: typer.Context,
    ref: str = typer.Argument(..., help="Pipeline id or name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """State and per-stage counts and latencies, as the nodes reported them."""
    pipeline = show_pipeline(get_context(ctx), ref)
    if as_json:
        print_json(pipeline)
        return
    _print(pipeline)


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Every pipeline, newest first."""
    pipelines = list_pipelines(get_context(ctx))
    if as_json:
        print_json(pipelines)
        return
    table = Table(title="Pipelines")
    for column in ("id", "name", "state", "stages", "results"):
        table.add_column(column)
    for p in pipelines:
        last = p["stages"][-1] if p["stages"] else None
        table.add_row(
            p["id"],
            p["name"],
            p["state"],
            str(len(p["spec"]["stages"])),
            str(last["messages_in"]) if last else "0",
        )
    console.print(table)


@app.command("stop")
def stop(ctx: typer.Context, ref: str = typer.Argument(..., help="Pipeline id or name.")) -> None:
    """Stop a pipeline; the server clears its nodes' stage configuration."""
    pipeline = stop_pipeline(get_context(ctx), ref)
    console.print(f"pipeline {pipeline['name']} stopped")
