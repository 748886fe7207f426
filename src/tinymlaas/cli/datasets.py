"""``tinymlaas datasets create|set|import|list|show|snapshot``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from tinymlaas.cli._shared import console, err_console, get_context, print_json
from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.errors import InvalidInput
from tinymlaas.services.datasets import (
    DatasetService,
    DatasetSummary,
    FieldLabels,
    ScalingMethod,
    spec_to_dict,
)

app = typer.Typer(help="Datasets: labelled samples, imports, generators and snapshots.", no_args_is_help=True)


def _summary_dict(summary: DatasetSummary) -> dict[str, Any]:
    return {
        "id": summary.id,
        "name": summary.name,
        **spec_to_dict(summary.spec),
        "description": summary.description,
        "samples": summary.sample_count,
        "unlabelled": summary.unlabelled,
        "collected": summary.collected,
        "field_labels": str(summary.field_labels),
        "input_scaling": str(summary.input_scaling),
        "label_counts": summary.label_counts,
        "snapshots": summary.snapshots,
    }


def _parse_shape(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError as exc:
        raise InvalidInput(f"--shape {text!r}: give comma-separated integers, e.g. 64,3") from exc


@app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset name."),
    generator: str | None = typer.Option(
        None, help="Fill from a built-in generator: sine, gestures, digits."
    ),
    samples: int | None = typer.Option(None, min=1, help="Number of generated samples (generator default)."),
    seed: int | None = typer.Option(None, help="Generator seed (default: the settings seed)."),
    task: Task | None = typer.Option(None, help="For an empty dataset: classification or regression."),
    kind: SampleKind | None = typer.Option(
        None, help="For an empty dataset: vector, timeseries, audio, image."
    ),
    shape: str | None = typer.Option(None, help="For an empty dataset: input shape, e.g. 64,3."),
    labels: str | None = typer.Option(None, help="For an empty classification dataset: a,b,c."),
    open_classes: bool = typer.Option(
        False, "--open-classes", help="For an empty classification dataset: classes are the labels given."
    ),
    field_labels: FieldLabels = typer.Option(
        FieldLabels.ACCEPT, help="Labels devices send: accept them, or store field samples unlabelled."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a dataset from a generator, or an empty one with a declared spec."""
    context = get_context(ctx)
    service = DatasetService(context)
    if generator:
        report = service.generate(
            name,
            generator,
            samples=samples,
            seed=context.settings.seed if seed is None else seed,
            field_labels=field_labels,
        )
        summary = service.show(name)
    else:
        if task is None or kind is None or shape is None:
            raise InvalidInput("give --generator, or --task, --kind and --shape for an empty dataset")
        spec = DatasetSpec(
            task=task,
            kind=kind,
            input_shape=_parse_shape(shape),
            labels=tuple(label.strip() for label in labels.split(",")) if labels else (),
        )
        summary = service.create(name, spec, open_classes=open_classes, field_labels=field_labels)
        report = None
    if as_json:
        print_json(_summary_dict(summary))
        return
    added = f" with {report.added} samples" if report else ""
    console.print(
        f"created dataset [bold]{name}[/]{added}: "
        f"{summary.spec.task}, {summary.spec.kind} {summary.spec.input_shape}"
    )


@app.command("set")
def set_(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset name."),
    field_labels: FieldLabels | None = typer.Option(
        None, help="Labels devices send: accept them, or store field samples unlabelled."
    ),
    scaling: ScalingMethod | None = typer.Option(
        None,
        help="How models trained from now on scale their inputs, per feature or channel, learnt from "
        "the train split: standardize (default), minmax, or none.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Change a dataset's policy for the labels devices send, or how its models scale their inputs;
    samples already stored keep their labels and models already trained keep their scaling."""
    if field_labels is None and scaling is None:
        raise InvalidInput("give --field-labels or --scaling (or both)")
    service = DatasetService(get_context(ctx))
    if field_labels is not None:
        service.set_field_labels(name, field_labels)
    if scaling is not None:
        service.set_input_scaling(name, scaling)
    summary = service.show(name)
    if as_json:
        print_json(_summary_dict(summary))
        return
    console.print(
        f"dataset [bold]{name}[/]: field labels {summary.field_labels}, input scaling {summary.input_scaling}"
    )


@app.command("import")
def import_(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset to import into (created when new)."),
    path: Path = typer.Argument(..., help="A folder of class subfolders, a CSV file, or an .npz file."),
    fmt: str | None = typer.Option(None, "--format", help="folder, csv or npz (default: from the path)."),
    label_column: str = typer.Option("label", help="CSV: the column holding labels or targets."),
    task: Task | None = typer.Option(None, help="CSV/npz: classification (default) or regression."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import samples; every file is checked before anything is stored."""
    report = DatasetService(get_context(ctx)).import_path(
        name, path, fmt=fmt, task=task, label_column=label_column
    )
    if as_json:
        print_json(report.__dict__)
        return
    console.print(
        f"imported {report.added} samples into [bold]{name}[/] ({report.duplicates} duplicates skipped)"
    )
    for warning in report.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)


@app.command("list")
def list_datasets(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List datasets with their sample counts."""
    summaries = DatasetService(get_context(ctx)).list()
    if as_json:
        print_json([_summary_dict(s) for s in summaries])
        return
    table = Table(title="Datasets")
    for column in ("name", "task", "kind", "shape", "samples", "classes", "snapshots"):
        table.add_column(column)
    for s in summaries:
        table.add_row(
            s.name,
            s.spec.task,
            s.spec.kind,
            str(s.spec.input_shape),
            f"{s.sample_count} ({s.unlabelled} unlabelled)" if s.unlabelled else str(s.sample_count),
            str(len(s.spec.labels) or "—"),
            str(len(s.snapshots)),
        )
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a dataset: spec, samples per label, unlabelled and collected counts, snapshots."""
    summary = DatasetService(get_context(ctx)).show(name)
    if as_json:
        print_json(_summary_dict(summary))
        return
    console.print(f"[bold]{summary.name}[/] ({summary.id}) — {summary.description}")
    console.print(f"{summary.spec.task}, {summary.spec.kind}, input shape {summary.spec.input_shape}")
    labelled = summary.sample_count - summary.unlabelled
    console.print(
        f"{summary.sample_count} samples: {labelled} labelled, {summary.unlabelled} unlabelled; "
        f"{summary.collected} collected from devices (labels from devices: {summary.field_labels})",
        highlight=False,
    )
    table = Table(title="samples per label")
    table.add_column("label")
    table.add_column("samples", justify="right")
    for label, count in sorted(summary.label_counts.items()):
        table.add_row(label, str(count))
    if summary.label_counts:
        console.print(table)
    for snap in summary.snapshots:
        console.print(f"snapshot {snap['id'][:16]}  {snap['samples']} samples  {snap['created_at']}")


@app.command("snapshot")
def snapshot(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Dataset name."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Freeze the dataset's samples and labels into an immutable, content-addressed snapshot."""
    snapshot_id = DatasetService(get_context(ctx)).snapshot(name)
    if as_json:
        print_json({"dataset": name, "snapshot": snapshot_id})
        return
    console.print(f"snapshot [bold]{snapshot_id}[/]")
