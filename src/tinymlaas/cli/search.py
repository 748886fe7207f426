"""``tinymlaas search``: constraint-aware model search, and ``tinymlaas searches`` to look at past ones."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from tinymlaas.cli._shared import console, err_console, fmt_bytes, get_context, print_json
from tinymlaas.services.search import list_searches, run_search, show_search
from tinymlaas.training.search_space import Budget, describe, parse_bytes

app = typer.Typer(help="Model searches: list and show past searches and their fronts.", no_args_is_help=True)


def _accuracy(metric: dict[str, Any]) -> str:
    value, low, high = metric["value"], metric.get("low"), metric.get("high")
    if metric["name"] != "accuracy":
        return f"{metric['name']} {value:.4g}"
    if low is None or high is None:
        return f"{value * 100:.1f} %"
    return f"{value * 100:.1f} % ({low * 100:.1f}–{high * 100:.1f})"


def front_table(search: dict[str, Any], board: str) -> Table:
    """The union of a board's two fronts (accuracy vs RAM, accuracy vs latency), cheapest RAM first."""
    front = search["fronts"][board]
    trials = {t["trial"]: t for t in search["trials"]}
    numbers = sorted(
        set(front["ram"]) | set(front["latency"]), key=lambda n: trials[n]["boards"][board]["ram_bytes"]
    )
    table = Table(title=f"Pareto front on {board} ({search['arch']}, search {search['id']})")
    for column in (
        "trial",
        "config",
        "accuracy (95 % CI)",
        "n",
        "RAM",
        "flash",
        "latency ms",
        "basis",
        "on",
        "model",
    ):
        table.add_column(column, justify="right" if column in ("n", "RAM", "flash", "latency ms") else "left")
    for number in numbers:
        trial, figures = trials[number], trials[number]["boards"][board]
        model = front["models"][str(number)]
        on = "+".join(
            name for name, keys in (("RAM", front["ram"]), ("latency", front["latency"])) if number in keys
        )
        latency = figures["latency_ms"]
        table.add_row(
            str(number),
            describe(trial["config"]),
            _accuracy(trial["accuracy"]),
            str(trial["accuracy"].get("n") or "—"),
            fmt_bytes(figures["ram_bytes"]),
            fmt_bytes(figures["flash_bytes"]),
            f"{latency:.2f}" if latency is not None else "—",
            figures["latency_basis"].split(":")[0],
            on,
            f"{model['name']}:{model['version']}",
        )
    return table


def print_search(search: dict[str, Any]) -> None:
    for board in search["boards"]:
        front = search["fronts"].get(board, {})
        if front.get("ram") or front.get("latency"):
            console.print(front_table(search, board))
            first = next(t for t in search["trials"] if t["trial"] == (front["ram"] or front["latency"])[0])
            console.print(f"[dim]latency basis on {board}: {first['boards'][board]['latency_basis']}[/]")
    summary = search["summary"]
    counts = summary.get("counts", {})
    console.print(
        f"{len(search['trials'])} trials: {counts.get('measured', 0)} measured, "
        f"{counts.get('pruned', 0)} pruned before training, {counts.get('failed', 0)} failed"
        + (f" — {summary['wall_s']:.1f} s on {summary['ray']}" if "wall_s" in summary else "")
    )
    for note in summary.get("notes", []):
        console.print(f"[yellow]{note}[/]")
    for trial in search["trials"]:
        if trial["state"] == "failed":
            console.print(
                f"[red]trial {trial['trial']} failed[/] ({describe(trial['config'])}): {trial.get('error')}"
            )
    if summary.get("sentence"):
        console.print(f"[bold red]{summary['sentence']}[/]")
        for number in summary.get("closest", []):
            trial = next(t for t in search["trials"] if t["trial"] == number)
            console.print(f"  closest: trial {number} ({describe(trial['config'])}) {trial['state']}")


def _size(text: str | None, what: str) -> int | None:
    return None if text is None else parse_bytes(text, what=what)


def search(
    ctx: typer.Context,
    dataset: str = typer.Option(
        ..., "--dataset", help="Dataset to search models for (a fresh snapshot is taken)."
    ),
    boards: list[str] = typer.Option(..., "--boards", help="Board to fit; repeatable, or comma-separated."),
    max_ram: str | None = typer.Option(None, "--max-ram", help="RAM budget: bytes, or e.g. 64k, 1M."),
    max_flash: str | None = typer.Option(None, "--max-flash", help="Flash budget: bytes, or e.g. 256k."),
    max_latency_ms: float | None = typer.Option(
        None, "--max-latency-ms", help="Latency budget per inference."
    ),
    trials: int = typer.Option(24, "--trials", help="Trials to run (1-200)."),
    workers: int | None = typer.Option(
        None, "--workers", help="Concurrent trials (default: the job workers)."
    ),
    epochs: int | None = typer.Option(None, "--epochs", help="Epochs per trial (default 20, early-stopped)."),
    arch: str | None = typer.Option(None, "--arch", help="Zoo family to search (default: the dataset's)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Train and measure N models of a zoo family as Ray Tune trials, within a RAM, flash and latency
    budget per board; store the Pareto front's models."""
    names = [name.strip() for entry in boards for name in entry.split(",") if name.strip()]
    budget = Budget(
        max_ram=_size(max_ram, "--max-ram"),
        max_flash=_size(max_flash, "--max-flash"),
        max_latency_ms=max_latency_ms,
    )
    with err_console.status(f"searching: 0 of {trials} trials done") as status:

        def on_trial(done: int, total: int, trial: dict[str, Any]) -> None:
            config = describe(trial["config"]) if trial.get("config") else ""
            status.update(f"searching: {done} of {total} trials done")
            err_console.print(f"[dim]trial {done}/{total} {trial.get('state', 'failed')}: {config}[/]")

        result = run_search(
            get_context(ctx),
            dataset,
            names,
            budget=budget,
            trials=trials,
            workers=workers,
            epochs=epochs,
            arch=arch,
            on_trial=on_trial,
        )
    if as_json:
        print_json(result)
        return
    print_search(result)


@app.command("list")
def list_(
    ctx: typer.Context,
    dataset: str | None = typer.Option(None, help="Only this dataset's searches."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Stored searches, newest first."""
    searches = list_searches(get_context(ctx), dataset)
    if as_json:
        print_json(searches)
        return
    table = Table(title="Model searches")
    for column in ("id", "dataset", "arch", "boards", "trials", "state", "front points", "created"):
        table.add_column(column)
    for s in searches:
        points = {
            n for front in s["fronts"].values() for n in front.get("ram", []) + front.get("latency", [])
        }
        table.add_row(
            s["id"],
            s["dataset"],
            s["arch"],
            ", ".join(s["boards"]),
            str(s["trials_planned"]),
            s["state"],
            str(len(points)),
            s["created_at"][:19],
        )
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    search_id: str = typer.Argument(..., help="Search id (see 'searches list')."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One search's fronts, counts and failures."""
    found = show_search(get_context(ctx), search_id)
    if as_json:
        print_json(found)
        return
    if found["error"]:
        console.print(f"[red]search {found['state']}[/]: {found['error']}")
    print_search(found)
