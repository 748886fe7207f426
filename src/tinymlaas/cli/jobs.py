"""``tinymlaas jobs list|show|cancel``: background jobs and how far each got."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from tinymlaas.cli._shared import console, get_context, print_json
from tinymlaas.jobs.service import cancel_job, list_jobs, show_job

app = typer.Typer(help="Background jobs: training, squeezing, compiling, lifecycles.", no_args_is_help=True)

_STATE_STYLE = {"succeeded": "green", "failed": "red", "cancelled": "dim", "running": "cyan"}


def _styled(state: str) -> str:
    style = _STATE_STYLE.get(state)
    return f"[{style}]{state}[/]" if style else state


def _when(moment: str | None) -> str:
    return "—" if moment is None else moment[:19].replace("T", " ")


def _print_job(job: dict[str, Any]) -> None:
    console.print(
        f"job {job['id']} ({job['kind']}): {_styled(job['state'])}, {job['progress']:.0%} — {job['message']}",
        highlight=False,
        soft_wrap=True,
    )
    console.print(f"params: {job['params']}", highlight=False, soft_wrap=True)
    if job["phase"] is not None:
        trained = f", epoch {job['epoch']} of {job['epochs']}" if job["epoch"] is not None else ""
        console.print(f"phase: {job['phase']} (pipeline step {job['step']}){trained}", highlight=False)
    console.print(
        f"created {_when(job['created_at'])}, started {_when(job['started_at'])}, "
        f"finished {_when(job['finished_at'])} (UTC)",
        highlight=False,
    )
    if job["error"]:
        console.print(f"[red]error:[/] {job['error']}", highlight=False, soft_wrap=True)
    if job["result"] is not None:
        console.print(f"result: {job['result']}", highlight=False, soft_wrap=True)
    if job.get("log"):
        console.print(job["log"].rstrip(), highlight=False, markup=False, soft_wrap=True)


@app.command("list")
def list_(
    ctx: typer.Context,
    state: str | None = typer.Option(None, help="Only jobs in this state (queued, running, ...)."),
    kind: str | None = typer.Option(
        None, help="Only jobs of this kind (train, squeeze, compile, lifecycle)."
    ),
    limit: int = typer.Option(50, help="At most this many."),
    offset: int = typer.Option(0, help="Skip this many of the newest first."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """List jobs, newest first."""
    jobs = list_jobs(get_context(ctx), state=state, kind=kind, limit=limit, offset=offset)
    if as_json:
        print_json(jobs)
        return
    table = Table(title="Jobs")
    for column in ("id", "kind", "state", "progress", "message", "created (UTC)"):
        table.add_column(column)
    for job in jobs:
        table.add_row(
            job["id"],
            job["kind"],
            _styled(job["state"]),
            f"{job['progress']:.0%}",
            job["error"] or job["message"],
            _when(job["created_at"]),
        )
    console.print(table)


@app.command("show")
def show(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., help="Job id, see 'jobs list'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show one job with its log."""
    job = show_job(get_context(ctx), job_id)
    if as_json:
        print_json(job)
        return
    _print_job(job)


@app.command("cancel")
def cancel(
    ctx: typer.Context,
    job_id: str = typer.Argument(..., help="Job id, see 'jobs list'."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Cancel a queued or running job; a running one stops at its next progress report."""
    job = cancel_job(get_context(ctx), job_id)
    if as_json:
        print_json(job)
        return
    _print_job(job)
