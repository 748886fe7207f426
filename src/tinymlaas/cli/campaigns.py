"""``tinymlaas campaigns list|show|cancel|rollback``: rollouts and how each device fared."""

from __future__ import annotations

import typer
from rich.table import Table

from tinymlaas.cli._shared import console, get_context, print_json
from tinymlaas.services.campaigns import (
    CampaignView,
    InstallationView,
    cancel_campaign,
    list_campaigns,
    rollback_campaign,
    show_campaign,
)

app = typer.Typer(help="Update campaigns: staged rollouts of a module to devices.", no_args_is_help=True)

_STATE_STYLE = {
    "succeeded": "green",
    "completed": "green",
    "failed": "red",
    "halted": "red",
    "refused": "yellow",
    "cancelled": "dim",
    "rolling_back": "yellow",
    "rolled_back": "magenta",
    "rollback_failed": "red",
}


def _styled(state: str) -> str:
    style = _STATE_STYLE.get(state)
    return f"[{style}]{state}[/]" if style else state


def _when(moment: str | None) -> str:
    return "—" if moment is None else moment[:19].replace("T", " ")


def _result(code: int | None, text: str | None) -> str:
    """Object 9's Update Result as the specification numbers it and in words: ``58 installation failure``."""
    if code is None:
        return "—"
    return f"{code} {(text or '').replace('_', ' ')}".rstrip()


def _detail(installation: InstallationView) -> str:
    detail = installation.detail
    parts = list(detail.get("reasons", []))
    parts += [str(detail[key]) for key in ("status_reason", "error") if detail.get(key)]
    if detail.get("rolled_back_to"):
        parts.append(f"back on {detail['rolled_back_to']}")
    return "; ".join(parts) or "—"


def print_campaign(campaign: CampaignView) -> None:
    """The campaign's summary and one row per target device, refusal reasons included."""
    stages = ",".join(str(pct) for pct in campaign.stages)
    console.print(
        f"campaign {campaign.id}: module {campaign.module} to {campaign.selector} — "
        f"{_styled(campaign.state)}, stage {campaign.stage}/{len(campaign.stages)} ({stages} %), "
        f"{campaign.done}/{campaign.targets} done",
        highlight=False,
        soft_wrap=True,
    )
    table = Table()
    for column in ("endpoint", "state", "update result", "detail", "started (UTC)", "finished (UTC)"):
        table.add_column(column)
    for installation in campaign.installations:
        table.add_row(
            installation.endpoint,
            _styled(installation.state),
            _result(installation.update_result, installation.update_result_text),
            _detail(installation),
            _when(installation.started_at),
            _when(installation.finished_at),
        )
    console.print(table)


@app.command("list")
def list_(ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List campaigns, newest first."""
    campaigns = list_campaigns(get_context(ctx))
    if as_json:
        print_json(campaigns)
        return
    table = Table(title="Campaigns")
    for column in ("id", "module", "to", "state", "stage", "progress", "created (UTC)"):
        table.add_column(column)
    for campaign in campaigns:
        counts = ", ".join(f"{state} {n}" for state, n in campaign.counts.items())
        table.add_row(
            campaign.id,
            campaign.module,
            campaign.selector,
            _styled(campaign.state),
            f"{campaign.stage}/{len(campaign.stages)}",
            f"{campaign.done}/{campaign.targets} ({counts})",
            _when(campaign.created_at),
        )
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    campaign_id: str = typer.Argument(..., help="Campaign id, see 'campaigns list'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one campaign and the installation on each of its devices."""
    campaign = show_campaign(get_context(ctx), campaign_id)
    if as_json:
        print_json(campaign)
        return
    print_campaign(campaign)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    campaign_id: str = typer.Argument(..., help="Campaign id, see 'campaigns list'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Stop sending; devices already sent the package still report how their installation ended."""
    campaign = cancel_campaign(get_context(ctx), campaign_id)
    if as_json:
        print_json(campaign)
        return
    print_campaign(campaign)


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    campaign_id: str = typer.Argument(..., help="Campaign id, see 'campaigns list'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Put the devices that took the campaign's module back on their previous model.

    Nothing more is sent; the running server uninstalls the module on each device as soon as it is
    online, and the device goes back to the model it ran before once that model passes its self-test.
    """
    campaign = rollback_campaign(get_context(ctx), campaign_id)
    if as_json:
        print_json(campaign)
        return
    print_campaign(campaign)
