"""``tinymlaas boards list|show``."""

from __future__ import annotations

import typer
from rich.table import Table

from tinymlaas.cli._shared import console, fmt_bytes, get_context, print_json

app = typer.Typer(help="Board profiles: what each device can hold and run.", no_args_is_help=True)


@app.command("list")
def list_boards(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List the boards in the catalog (built-in plus --boards-dir)."""
    boards = get_context(ctx).catalog.boards.values()
    if as_json:
        print_json([b.as_dict() for b in boards])
        return
    table = Table(title="Boards")
    for column in (
        "id",
        "name",
        "class",
        "core",
        "MHz",
        "flash",
        "RAM",
        "usable flash",
        "usable RAM",
        "runtimes",
    ):
        table.add_column(column, justify="right" if column in ("MHz",) else "left")
    for b in boards:
        table.add_row(
            b.id,
            b.name,
            b.board_class,
            b.core,
            str(b.clock_mhz),
            fmt_bytes(b.flash_bytes),
            fmt_bytes(b.ram_bytes),
            fmt_bytes(b.usable_flash_bytes),
            fmt_bytes(b.usable_ram_bytes),
            ",".join(b.runtimes),
        )
    console.print(table)


@app.command("show")
def show_board(
    ctx: typer.Context,
    board_id: str = typer.Argument(..., help="Board id, see 'boards list'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one board with the source of every figure."""
    board = get_context(ctx).catalog.board(board_id)
    data = board.as_dict()
    if as_json:
        print_json(data)
        return
    table = Table(title=board.name, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_column("source", style="dim")
    for key, value in data.items():
        if key == "sources":
            continue
        shown = ", ".join(value) if isinstance(value, list | tuple) else str(value)
        if key.endswith("_bytes"):
            shown = f"{value} ({fmt_bytes(value)})"
        table.add_row(key, shown, board.sources.get(key, ""))
    console.print(table)
