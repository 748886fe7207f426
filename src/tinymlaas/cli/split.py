"""``tinymlaas split``: cut a model between a device and the node behind it, and build the cut."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from tinymlaas.cli._shared import console, err_console, fmt_bytes, get_context, print_json
from tinymlaas.services.splitting import build_split, list_splits, plan_model_split, show_split

app = typer.Typer(help="Split plans: list, show and build the cuts of a model.", no_args_is_help=True)


def _ms(figure: dict[str, Any]) -> str:
    return "—" if figure["ms"] == 0 else f"{figure['ms']:.2f}"


def cuts_table(plan: dict[str, Any]) -> Table:
    """One row per valid cut, the extremes first and last, the choice marked."""
    table = Table(
        title=f"Cuts of {plan['model']['name']} v{plan['model']['version']} on "
        f"{plan['device']} --{plan['link']}--> {plan['remote']} ({plan['operators']} operators)"
    )
    numeric = ("ms", "bytes", "flash", "RAM")
    columns = ("", "cut", "crosses", "bytes", "head flash", "head RAM", "fits")
    energy = any(c.get("device_energy") for c in plan["candidates"])
    times = ("device ms", "transfer ms", "remote ms", "total ms")
    for column in (*columns, *times, *(("device mJ",) if energy else ())):
        table.add_column(column, justify="right" if column.endswith((*numeric, "mJ")) else "left")
    for c in plan["candidates"]:
        chosen = c["index"] == plan["chosen"]
        extra = (f"{c['device_energy']['mj']:.3f}",) if energy else ()
        table.add_row(
            "[bold green]→[/]" if chosen else "",
            f"{c['index']}",
            c["label"],
            f"{c['payload_bytes']:,}",
            fmt_bytes(c["head_flash_bytes"]) if c["head_flash_bytes"] else "—",
            fmt_bytes(c["head_ram_bytes"]) if c["head_ram_bytes"] else "—",
            "yes" if c["fits"] else "[red]no[/]",
            _ms(c["device"]),
            f"{c['transfer']['ms']:.2f}",
            _ms(c["remote"]),
            f"[bold]{c['total_ms']:.2f}[/]" if chosen else f"{c['total_ms']:.2f}",
            *extra,
        )
    return table


def _bases(plan: dict[str, Any]) -> list[str]:
    """Where each column's figures come from, said once: the chosen cut's (or the first) sentences."""
    chosen = next((c for c in plan["candidates"] if c["index"] == plan["chosen"]), plan["candidates"][0])
    lines = [
        f"device: {chosen['device']['basis']}",
        f"transfer: {chosen['transfer']['basis']}",
        f"remote: {chosen['remote']['basis']}",
        "bytes: the encoded hop message (int8 tensor, its scale and zero point, CBOR header)",
    ]
    if chosen.get("device_energy"):
        lines.append(f"device mJ: {chosen['device_energy']['basis']}")
    return lines


def print_plan(plan: dict[str, Any]) -> None:
    console.print(cuts_table(plan))
    for line in _bases(plan):
        console.print(f"[dim]{line}[/]")
    for note in plan["notes"]:
        console.print(f"[yellow]{note}[/]")
    for c in plan["candidates"]:
        if not c["fits"]:
            console.print(f"[red]cut {c['index']} does not fit[/] ({c['label']}): {'; '.join(c['reasons'])}")
    if plan["chosen"] is None:
        return
    speedup = plan.get("speedup_vs_worse_extreme")
    chosen = next(c for c in plan["candidates"] if c["index"] == plan["chosen"])
    console.print(
        f"chosen: cut {chosen['index']} ({chosen['label']}), {chosen['total_ms']:.2f} ms end to end"
        + (f", {speedup:.2f}× faster than the slower extreme" if speedup else "")
        + f" — plan {plan['id']}"
    )


def print_build(plan: dict[str, Any]) -> None:
    build = plan["build"]
    table = Table(title=f"Split of {plan['model']['name']} at cut {build['cut']}: {build['label']}")
    for column in ("part", "model", "board", "runtime", "module", "fits"):
        table.add_column(column)
    for role in ("head", "tail"):
        part = build[role]
        table.add_row(
            role,
            part["model"],
            part["board"],
            part["runtime"],
            part["module"],
            "yes" if part["fits"] else f"[red]no[/]: {'; '.join(part['reasons'])}",
        )
    console.print(table)
    accuracy = build.get("accuracy")
    if accuracy:
        console.print(
            f"{accuracy['metric']}: split {accuracy['split']:.4f}, unsplit int8 {accuracy['unsplit']:.4f} "
            f"({accuracy['basis']}: {accuracy['outputs_differing']} of {accuracy['samples']} outputs differ, "
            f"by at most {accuracy['max_output_difference']}; with the tail in TFLM: "
            f"{'identical' if accuracy['exact_with_tflm_tail'] else 'NOT identical'})"
        )
    else:
        console.print("accuracy: not measured (a part was refused, or the model has no test split)")


def split(
    ctx: typer.Context,
    model: str = typer.Argument(..., help="Model id, name or name:version (its int8 variant is cut)."),
    chain: str = typer.Option(
        ..., "--chain", help="device:link:node, e.g. nano33ble:ble:rpi4 (links: ble, wifi, lte-m, nb-iot)."
    ),
    objective: str = typer.Option(
        "latency", help="What the choice minimises: latency (end to end) or energy (the device's)."
    ),
    build: bool = typer.Option(False, "--build", help="Also build the chosen cut's head and tail modules."),
    cut: int | None = typer.Option(None, help="Build this cut instead of the chosen one (with --build)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List every valid cut of a model on a device chain with predicted times, and choose one."""
    context = get_context(ctx)
    with err_console.status("planning") as status:
        plan = plan_model_split(
            context, model, chain, objective=objective, progress=lambda m: status.update(m)
        )
        if build:
            plan = build_split(context, plan["id"], cut=cut, progress=lambda m: status.update(m))
    if as_json:
        print_json(plan)
        return
    print_plan(plan)
    if build:
        print_build(plan)


@app.command("list")
def list_(
    ctx: typer.Context,
    model: str | None = typer.Option(None, help="Only this model's plans."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Stored split plans, newest first."""
    plans = list_splits(get_context(ctx), model)
    if as_json:
        print_json(plans)
        return
    table = Table(title="Split plans")
    for column in ("id", "model", "chain", "chosen", "total ms", "built"):
        table.add_column(column)
    for p in plans:
        chosen = next((c for c in p["candidates"] if c["index"] == p["chosen"]), None)
        table.add_row(
            p["id"],
            f"{p['model']['name']} v{p['model']['version']}",
            p["chain"],
            str(p["chosen"]) if p["chosen"] is not None else "none fits",
            f"{chosen['total_ms']:.2f}" if chosen else "—",
            f"cut {p['build']['cut']}" if p["build"] else "",
        )
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    plan_id: str = typer.Argument(..., help="Plan id (see 'splits list')."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """One plan's cuts, and its built parts when it was built."""
    plan = show_split(get_context(ctx), plan_id)
    if as_json:
        print_json(plan)
        return
    print_plan(plan)
    if plan["build"]:
        print_build(plan)


@app.command("build")
def build_(
    ctx: typer.Context,
    plan_id: str = typer.Argument(..., help="Plan id (see 'splits list')."),
    cut: int | None = typer.Option(None, help="The cut to build (default: the plan's choice)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Make a cut's head and tail models, compile them for their nodes and measure their accuracy."""
    with err_console.status("building") as status:
        plan = build_split(get_context(ctx), plan_id, cut=cut, progress=lambda m: status.update(m))
    if as_json:
        print_json(plan)
        return
    print_build(plan)
