"""``tinymlaas audit list``: the audit trail, read on the server host, newest first."""

from __future__ import annotations

import typer
from rich.table import Table

from tinymlaas.cli._shared import console, get_context, print_json
from tinymlaas.services.audit import audit_page

app = typer.Typer(help="The audit trail: who changed what, and how it ended.", no_args_is_help=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: int = typer.Option(50, "--limit", min=1, max=1000, help="At most this many events."),
    offset: int = typer.Option(0, "--offset", min=0, help="Skip this many of the newest events first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON: the events and the total count."),
) -> None:
    """List audit events, newest first: API and dashboard changes, refusals, and token commands."""
    events, count = audit_page(get_context(ctx), limit=limit, offset=offset)
    if as_json:
        print_json({"data": events, "count": count})
        return
    table = Table(title=f"Audit trail ({offset + 1 if events else 0}–{offset + len(events)} of {count})")
    for column in ("when (UTC)", "actor", "role", "action", "target", "outcome", "status"):
        table.add_column(column, overflow="fold")
    for event in events:
        table.add_row(
            event["at"][:19].replace("T", " "),
            event["actor"],
            event["role"],
            event["action"],
            event["target"],
            str(event["detail"].get("outcome", "—")),
            str(event["detail"].get("status", "—")),
        )
    console.print(table)
