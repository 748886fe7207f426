"""``tinymlaas deploy MODULE --to SELECTOR``: plan a staged rollout that the running server carries out."""

from __future__ import annotations

import typer

from tinymlaas.cli._shared import console, get_context, print_json
from tinymlaas.cli.campaigns import print_campaign
from tinymlaas.errors import InvalidInput
from tinymlaas.services.campaigns import create_campaign


def _stages(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(","))
    except ValueError as exc:
        raise InvalidInput(f"--stages takes whole percentages separated by commas, got {text!r}") from exc


def _max_failures(text: str) -> int | float:
    """A count ("2") or a fraction of the installations sent ("0.1")."""
    try:
        return float(text) if "." in text else int(text)
    except ValueError as exc:
        raise InvalidInput(f"--max-failures takes a count or a fraction, got {text!r}") from exc


def deploy(
    ctx: typer.Context,
    module: str = typer.Argument(..., help="Module id, see 'models show'."),
    to: str = typer.Option(
        ..., "--to", help="Targets: board:ID, tag:NAME or a comma-separated endpoint list."
    ),
    stages: str = typer.Option(
        "100", help="Cumulative percentages of the targets per stage, e.g. 10,50,100."
    ),
    max_failures: str = typer.Option(
        "0", "--max-failures", help="Failures that halt the rollout: a count (2) or a fraction (0.1)."
    ),
    allow_degraded: bool = typer.Option(
        False,
        "--allow-degraded",
        help="Deploy a module whose accuracy as shipped is worse than its float model's beyond the "
        "allowed drop (see 'models show'); refused without it.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Deploy a module to devices in stages; devices that cannot run it are refused with the reasons.

    The campaign is stored and carried out by 'tinymlaas serve'; follow it with 'campaigns show'.
    """
    campaign = create_campaign(
        get_context(ctx),
        module,
        to,
        _stages(stages),
        _max_failures(max_failures),
        allow_degraded=allow_degraded,
    )
    if as_json:
        print_json(campaign)
        return
    print_campaign(campaign)
    console.print(
        f"campaign {campaign.id} stored; 'tinymlaas serve' sends it to the devices online",
        highlight=False,
        soft_wrap=True,
    )
