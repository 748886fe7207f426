"""``tinymlaas lifecycle run``: the whole offline lifecycle in one command, and its comparison table;
``lifecycle dry-runs`` and ``lifecycle clean``: the dry runs kept in the sandbox, and their removal."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Group
from rich.table import Table
from rich.text import Text

from tinymlaas.cli._shared import (
    console,
    epoch_progress,
    err_console,
    fmt_bytes,
    fmt_cross_validation,
    fmt_metric,
    get_context,
    print_json,
    quality_cell,
    variant_label,
)
from tinymlaas.errors import InvalidInput
from tinymlaas.formatting import fmt_target_basis
from tinymlaas.jobs.pipeline import delete_dry_run, list_dry_runs
from tinymlaas.services.lifecycle import run_lifecycle

app = typer.Typer(
    help="The whole lifecycle in one command, and the dry runs kept in the sandbox.", no_args_is_help=True
)


def _on_target(target: dict[str, Any] | None) -> str:
    """Instructions and the board's latency estimate for a module measured on its core; else a dash."""
    if not target:
        return "—"
    instructions = f"{target['instructions'] / 1e6:.2f} M instr"
    if target.get("latency_ms") is None:
        return instructions
    return f"{instructions}, ≈ {target['latency_ms']:.3g} ms (est.)"


def comparison_table(report: dict[str, Any]) -> Group:
    """The board × variant table, with every reason a module does not fit listed under it."""
    table = Table(
        title=f"{report['dataset']}: {report['arch']} model {report['model']}, "
        f"float {fmt_metric(report['float_metric'])}"
    )
    for column in (
        "board",
        "variant",
        "runtime",
        "metric (runtime)",
        "size",
        "arena",
        "flash",
        "RAM",
        "quality",
        "fits",
        "on target",
    ):
        table.add_column(column)
    notes: list[str] = []
    for row in report["variants"]:
        quality = quality_cell(row, len(notes) + 1)
        if row["degraded"]:
            notes.append(f"[{len(notes) + 1}] {row['board']} {row['quantization']}: {row['degraded_reason']}")
        first_note = len(notes) + 1
        if not row["fits"]:
            notes.extend(
                f"[{len(notes) + 1}] {row['board']} {row['quantization']}: {r}" for r in row["reasons"]
            )
        table.add_row(
            row["board"],
            variant_label(row),
            row["runtime"],
            fmt_metric(row["metric"]),
            fmt_bytes(row["size_bytes"]),
            fmt_bytes(row["arena_bytes"]),
            fmt_bytes(row["flash_bytes"]),
            fmt_bytes(row["ram_bytes"]),
            quality,
            "[green]yes[/]" if row["fits"] else f"[red]no[/] \\[{first_note}]",
            _on_target(row.get("on_target")),
        )
    timings = ", ".join(f"{k} {v:.1f} s" for k, v in report["timings_s"].items())
    table.caption = f"timings: {timings}"
    scaling = report.get("input_scaling") or {}
    notes[:0] = [f"input scaling ({scaling['method']}): {warning}" for warning in scaling.get("warnings", [])]
    notes.extend(
        f"on target, {row['board']}: {fmt_target_basis(row['on_target'])}"
        for row in report["variants"]
        if row.get("on_target")
    )
    cross_validation = report.get("cross_validation")
    if cross_validation:
        notes.insert(0, fmt_cross_validation(cross_validation))
    return Group(table, *(Text(note) for note in notes))


@app.command("run")
def run(
    ctx: typer.Context,
    dataset: str = typer.Option(..., "--dataset", help="Dataset name."),
    boards: str = typer.Option(..., "--boards", help="Comma-separated board ids (see 'boards list')."),
    arch: str | None = typer.Option(None, help="Architecture (default: from the data)."),
    epochs: int | None = typer.Option(None, min=1, help="Most training epochs."),
    seed: int | None = typer.Option(None, help="Seed for the split and the weights."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
) -> None:
    """Snapshot → train → squeeze → compile → fit for every board, then compare."""
    board_ids = [b.strip() for b in boards.split(",") if b.strip()]
    with epoch_progress(err_console.is_terminal or not as_json, f"{dataset}") as (on_epoch, on_message):
        report = run_lifecycle(
            get_context(ctx),
            dataset,
            board_ids,
            arch=arch,
            epochs=epochs,
            seed=seed,
            on_epoch=on_epoch,
            progress=on_message,
        )
    if as_json:
        print_json(report)
        return
    console.print(comparison_table(report))


@app.command("dry-runs")
def dry_runs(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the dry runs kept in the sandbox, newest first, with their model and fit verdicts."""
    runs = list_dry_runs(get_context(ctx))
    if as_json:
        print_json([r.model_dump(mode="json") for r in runs])
        return
    table = Table(title="Dry runs (kept until cleaned)")
    for column in ("job", "dataset", "state", "model", "float metric", "fit", "started"):
        table.add_column(column)
    for r in runs:
        fit = f"{r.fitting} of {len(r.verdicts)}" if r.verdicts else "—"
        model = r.model or "—"
        table.add_row(
            r.job, r.dataset, r.state.value, model, fmt_metric(r.float_metric), fit, r.created_at[:19]
        )
    console.print(table)


@app.command("clean")
def clean(
    ctx: typer.Context,
    jobs: list[str] = typer.Argument(None, help="Dry run job ids (see 'lifecycle dry-runs')."),
    every: bool = typer.Option(False, "--all", help="Every dry run that has ended."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Delete dry runs: their sandbox dataset, model, variants, modules, jobs and unreferenced blobs."""
    context = get_context(ctx)
    chosen = list(jobs or [])
    if every:
        chosen += [r.job for r in list_dry_runs(context) if r.can_delete and r.job not in chosen]
    elif not chosen:
        raise InvalidInput("name the dry runs to delete (see 'lifecycle dry-runs'), or give --all")
    removed = [delete_dry_run(context, job) for job in chosen]
    if as_json:
        print_json([r.model_dump(mode="json") for r in removed])
        return
    for r in removed:
        console.print(
            f"deleted dry run {r.job} on {r.dataset}: {r.rows.get('models', 0)} model(s), "
            f"{r.rows.get('modules', 0)} module(s), {r.rows.get('samples', 0)} sample(s), "
            f"{r.blobs} blob(s), {fmt_bytes(r.freed_bytes)}"
        )
    if not removed:
        console.print("no dry run to delete")
