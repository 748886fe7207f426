"""The root ``tinymlaas`` command: global options, sub-command groups, and error reporting."""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from tinymlaas.cli import (
    agent,
    audit,
    boards,
    campaigns,
    datasets,
    demo,
    deploy,
    devices,
    fleet,
    jobs,
    lifecycle,
    models,
    pipeline,
    pipelines,
    search,
    serve,
    split,
    tokens,
)
from tinymlaas.cli._shared import err_console
from tinymlaas.errors import TinymlaasError
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings

__all__ = ["app", "main"]

app = typer.Typer(
    help="TinyMLaaS: collect, train, squeeze and compile TinyML models for a fleet of boards.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(boards.app, name="boards")
app.add_typer(datasets.app, name="datasets")
app.add_typer(models.app, name="models")
app.add_typer(lifecycle.app, name="lifecycle")
app.add_typer(devices.app, name="devices")
app.add_typer(campaigns.app, name="campaigns")
app.add_typer(fleet.app, name="fleet")
app.add_typer(jobs.app, name="jobs")
app.add_typer(pipeline.app, name="pipeline")
app.add_typer(tokens.app, name="tokens")
app.add_typer(audit.app, name="audit")
app.add_typer(split.app, name="splits")
app.add_typer(pipelines.app, name="pipelines")
app.add_typer(search.app, name="searches")
app.command("train")(models.train)
app.command("squeeze")(models.squeeze)
app.command("compile")(models.compile_)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.command("agent")(agent.agent)
app.command("deploy")(deploy.deploy)
app.command("split")(split.split)
app.command("search")(search.search)


@app.callback()
def root(
    ctx: typer.Context,
    data_dir: Path | None = typer.Option(
        None,
        envvar="TINYMLAAS_DATA_DIR",
        help="Where the database and blobs live (default ./.data if present, else ~/.local/share/tinymlaas).",
    ),
    boards_dir: list[Path] = typer.Option(
        [], "--boards-dir", help="Extra directory of board files (TOML); repeatable."
    ),
) -> None:
    overrides: dict[str, object] = {}
    if data_dir is not None:
        overrides["data_dir"] = data_dir
    if boards_dir:
        overrides["boards_dirs"] = tuple(boards_dir)
    ctx.obj = Context(Settings(**overrides))


def main() -> None:
    """Console entry point: a product error prints one clear line and exits 1, never a traceback."""
    try:
        app()
    except TinymlaasError as exc:
        err_console.print(f"[red]error:[/] {exc.detail}", highlight=False, soft_wrap=True)
        sys.exit(1)
