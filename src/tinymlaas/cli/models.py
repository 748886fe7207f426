"""``tinymlaas train``, ``squeeze``, ``compile`` and ``models import|list|show``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from tinymlaas.cli._shared import (
    console,
    epoch_progress,
    err_console,
    fmt_bytes,
    fmt_metric,
    get_context,
    print_json,
    quality_cell,
    variant_label,
)
from tinymlaas.formatting import fmt_on_target, fmt_target_basis
from tinymlaas.services.compiling import compile_module, module_package
from tinymlaas.services.imports import import_model as import_model_file
from tinymlaas.services.models import list_models as list_model_views
from tinymlaas.services.models import show_model as show_model_view
from tinymlaas.services.models import show_variant
from tinymlaas.services.squeezing import squeeze_model
from tinymlaas.services.training import train_model
from tinymlaas.squeeze.convert import DEFAULT_QUANTIZATIONS, Quantization

app = typer.Typer(
    help="Models: import from elsewhere, list, show variants and modules.", no_args_is_help=True
)


def variants_table(variants: list[dict[str, Any]], float_metric: dict[str, Any] | None) -> Table:
    title = f"Variants (float model: {fmt_metric(float_metric)})" if float_metric else "Variant"
    table = Table(title=title)
    for column in (
        "variant",
        "quantization",
        "size",
        "arena",
        "params",
        "MACs",
        "TFLM metric",
        "LiteRT metric",
        "quality",
        "note",
    ):
        table.add_column(column)
    for v in variants:
        table.add_row(
            v["id"],
            variant_label(v),
            fmt_bytes(v["size_bytes"]),
            fmt_bytes(v["arena_bytes"]),
            f"{v['params']:,}",
            f"{v['macs']:,}",
            fmt_metric(v["metrics"].get("tflm")),
            fmt_metric(v["metrics"].get("litert")),
            quality_cell(v),
            "; ".join([*v["runtime_errors"].values(), *([v["degraded_reason"]] if v["degraded"] else [])]),
        )
    return table


def modules_table(modules: list[dict[str, Any]]) -> Table:
    table = Table(title="Modules")
    for column in ("module", "variant", "board", "runtime", "flash", "RAM", "fits", "on target", "reasons"):
        table.add_column(column)
    for m in modules:
        table.add_row(
            m["id"],
            m["variant"],
            m["board"],
            m["runtime"],
            fmt_bytes(m["flash_bytes"]),
            fmt_bytes(m["ram_bytes"]),
            "[green]yes[/]" if m["fits"] else "[red]no[/]",
            fmt_on_target(m.get("on_target")),
            "\n".join(m["reasons"]),
        )
    return table


def layers_table(target: dict[str, Any]) -> Table:
    """Instructions per layer as counted in QEMU, with each layer's share of the inference."""
    total = sum(layer["instructions"] for layer in target["layers"]) or 1
    table = Table(title=f"Instructions per layer ({target['core']}, QEMU {target['machine']})")
    for column in ("layer", "op", "instructions", "share"):
        table.add_column(column, justify="right" if column in ("instructions", "share") else "left")
    for layer in target["layers"]:
        share = layer["instructions"] / total
        table.add_row(str(layer["index"]), layer["op"], f"{layer['instructions']:,}", f"{share:.1%}")
    return table


def train(
    ctx: typer.Context,
    dataset: str = typer.Option(..., "--dataset", help="Dataset to train on (snapshotted first)."),
    arch: str | None = typer.Option(
        None, help="dense, cnn1d, cnn2d, mobilenet or gate (default: from the data)."
    ),
    epochs: int | None = typer.Option(
        None, min=1, help="Most epochs to train; early stopping may end sooner."
    ),
    seed: int | None = typer.Option(None, help="Seed for the split and the weights."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Train a model on a dataset snapshot and score it on the held-out test split."""
    with epoch_progress(err_console.is_terminal or not as_json, f"training on {dataset}") as (on_epoch, _):
        model = train_model(get_context(ctx), dataset, arch=arch, epochs=epochs, seed=seed, on_epoch=on_epoch)
    if as_json:
        print_json(model)
        return
    run = model["run"]
    console.print(
        f"model [bold]{model['id']}[/] ({model['name']} v{model['version']}, {model['arch']}, "
        f"{model['params']:,} parameters): test {fmt_metric(model['float_metric'])} after "
        f"{run['epochs_run']} epochs in {run['duration_s']:.1f} s"
    )


def squeeze(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model id, name, or name:version."),
    quantization: list[Quantization] = typer.Option(
        list(DEFAULT_QUANTIZATIONS),
        "--quantization",
        "-q",
        help="Repeat to choose; default float32, float16 and int8. int16x8 (int16 activations, int8 "
        "weights) is an option for models whose int8 activations lose too much.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Convert to float32/float16/int8 (or int16x8) .tflite and measure each in TFLM and LiteRT."""
    context = get_context(ctx)
    with err_console.status("squeezing") as status:
        variants = squeeze_model(
            context, model, quantizations=quantization, progress=lambda m: status.update(m)
        )
    if as_json:
        print_json(variants)
        return
    console.print(variants_table(variants, show_model_view(context, model).float_metric))


def compile_(
    ctx: typer.Context,
    variant: str = typer.Argument(..., help="Variant id (see 'models show')."),
    board: str = typer.Option(..., "--board", help="Board id (see 'boards list')."),
    runtime: str | None = typer.Option(None, help="Runtime to target (default: the board's first)."),
    compiler: str | None = typer.Option(
        None,
        help="Compiler plugin (tflm, litert, native …); native builds for the board's Cortex-M core "
        "and measures it in QEMU.",
    ),
    out: Path | None = typer.Option(None, help="Write the module package (.zip) here."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Compile a variant into an inference module for a board and check that it fits."""
    context = get_context(ctx)
    with err_console.status("compiling") as status:
        module = compile_module(
            context, variant, board, runtime=runtime, compiler=compiler, progress=lambda m: status.update(m)
        )
    if out is not None and module["package"]:
        out.write_bytes(module_package(context, module["id"]))
    if as_json:
        print_json(module)
        return
    console.print(modules_table([module]))
    if module.get("on_target"):
        target = module["on_target"]
        console.print(layers_table(target))
        console.print(fmt_target_basis(target))
    if out is not None:
        console.print(
            f"package written to {out}" if module["package"] else "no package: the module was refused"
        )


@app.command("import")
def import_model(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A .tflite or .keras file."),
    name: str | None = typer.Option(None, help="Model name (default: the file name)."),
    dataset: str | None = typer.Option(None, help="Dataset to score it on (required for .keras)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Import a model made elsewhere; it is inspected and measured like a trained one."""
    with err_console.status("importing") as status:
        model = import_model_file(
            get_context(ctx), path, name=name, dataset=dataset, progress=lambda m: status.update(m)
        )
    if as_json:
        print_json(model)
        return
    console.print(f"model [bold]{model['id']}[/] ({model['name']} v{model['version']}) imported from {path}")
    if model.get("variants"):
        console.print(variants_table(model["variants"], model["float_metric"]))


@app.command("list")
def list_models(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List models and their float metric."""
    models = list_model_views(get_context(ctx))
    if as_json:
        print_json(models)
        return
    table = Table(title="Models")
    for column in ("id", "name", "version", "origin", "arch", "params", "float metric"):
        table.add_column(column)
    for m in models:
        table.add_row(
            m["id"],
            m["name"],
            str(m["version"]),
            m["origin"],
            m["arch"],
            f"{m['params']:,}",
            fmt_metric(m["float_metric"]),
        )
    console.print(table)


@app.command("show")
def show_model(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model id, name, or name:version."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a model with its lineage, variants and modules."""
    data = show_model_view(get_context(ctx), model)
    if as_json:
        print_json(data)
        return
    console.print(
        f"[bold]{data.id}[/] {data.name} v{data.version} ({data.origin}, {data.arch}, "
        f"{data.params:,} parameters)"
    )
    if data.run:
        console.print(f"training run {data.run['id']} on snapshot {data.run['snapshot'][:16]}")
    console.print(variants_table([v.model_dump() for v in data.variants], data.float_metric))
    if data.modules:
        console.print(modules_table([m.model_dump() for m in data.modules]))


@app.command("variant")
def variant_detail(
    ctx: typer.Context,
    variant: str = typer.Argument(..., help="Variant id (see 'models show')."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one variant layer by layer: operator, output shape, parameters, MACs."""
    data = show_variant(get_context(ctx), variant)
    if as_json:
        print_json(data)
        return
    console.print(variants_table([data], None))
    for tensor in (*data["inputs"], *data["outputs"]):
        quant = f", scale {tensor['scale']:.6g}, zero point {tensor['zero_point']}" if tensor["scale"] else ""
        console.print(f"{tensor['name']}: {tensor['dtype']} {tuple(tensor['shape'])}{quant}")
    table = Table(title=f"Layers of {data['id']} ({', '.join(data['ops'])})")
    for column in ("#", "op", "output shape", "params", "MACs"):
        table.add_column(column, justify="right" if column in ("#", "params", "MACs") else "left")
    for layer in data["layers"]:
        table.add_row(
            str(layer["index"]),
            layer["op"],
            str(tuple(layer["output_shape"])),
            f"{layer['params']:,}",
            f"{layer['macs']:,}",
        )
    console.print(table)
    if data["modules"]:
        console.print(modules_table(data["modules"]))
