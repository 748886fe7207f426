"""``tinymlaas agent``: run one device agent in the foreground until Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer

from tinymlaas.agent import (
    Agent,
    AgentEvent,
    Collection,
    DirectoryWatcher,
    GestureStream,
    ReplaySource,
    SensorSource,
)
from tinymlaas.agent.client import server_uris
from tinymlaas.cli._shared import console, err_console, get_context
from tinymlaas.deploy.signing import PUBLIC_KEY_NAME, load_public_key
from tinymlaas.errors import InvalidInput
from tinymlaas.services.provisioning import default_server_uri
from tinymlaas.settings import Settings

__all__ = ["agent", "event_line", "parse_collection", "parse_sensor", "trusted_key"]

_PROGRESS_EVERY = 16  # download blocks between progress lines


def parse_sensor(spec: str) -> SensorSource | None:
    """``gestures`` (or ``gestures:SEED``), ``replay:PATH``, ``watch:DIR`` or ``none``."""
    kind, _, argument = spec.partition(":")
    match kind:
        case "none" if not argument:
            return None
        case "gestures":
            if argument and not argument.isdecimal():
                raise InvalidInput(f"--sensor gestures:SEED needs a whole number, got {argument!r}")
            return GestureStream(seed=int(argument or 0))
        case "replay" if argument:
            return ReplaySource(Path(argument))
        case "watch" if argument:
            return DirectoryWatcher(Path(argument))
    raise InvalidInput(f"--sensor {spec!r}: use gestures[:SEED], replay:PATH, watch:DIR or none")


def trusted_key(settings: Settings, given: Path | None) -> bytes:
    """The key packages must be signed with: the file named, else the one ``serve`` signs with here.

    An agent on the server's machine (a tour, a test bench) needs no path typed: it trusts the key of
    the store this command reads. One elsewhere names the file ``serve`` printed.
    """
    path = settings.keys_dir / PUBLIC_KEY_NAME if given is None else given
    if not path.is_file():
        hint = (
            "start 'tinymlaas serve' with this store once, or pass --public-key"
            if given is None
            else "pass the file 'tinymlaas serve' printed"
        )
        raise InvalidInput(f"no package-signing public key at {path}: {hint}")
    return load_public_key(path)


def parse_collection(dataset: str | None, label: str | None, every: int) -> Collection | None:
    """The collection options, refusing a ``--label`` that would label nothing, as no dataset was named."""
    if dataset is None:
        if label is not None:
            raise InvalidInput("--label names the class of collected samples; give --collect DATASET too")
        return None
    return Collection(dataset, label=label, every=every)


def event_line(endpoint: str, event: AgentEvent, style: str) -> str:
    """The event's kind in colour, then its message without the device's name and the kind again.

    Messages are whole sentences for logs ("pico-1 registered at ..."); a line that already starts
    with the kind ("registered") would otherwise say it twice.
    """
    message = event.message.removeprefix(f"{endpoint} ")
    if message.startswith(f"{event.kind} "):
        message = message.removeprefix(event.kind).lstrip()
    return f"[{style}]{event.kind}[/] {message}"


def _printer(endpoint: str) -> Callable[[AgentEvent], None]:
    def print_event(event: AgentEvent) -> None:
        if event.kind == "download" and (event.block or 0) % _PROGRESS_EVERY:
            return
        failed = ("registration-failed", "install-failed", "collect-dropped", "collect-rejected")
        style = "red" if event.kind in failed else "cyan"
        console.print(event_line(endpoint, event, style), highlight=False, soft_wrap=True)

    return print_event


def _json_event(event: AgentEvent) -> None:
    """One JSON object per line, every event (download blocks included), for scripts and log shippers."""
    line = {"at": datetime.now(UTC).isoformat(), "kind": event.kind, "message": event.message}
    if event.block is not None:
        line["block"] = event.block
    typer.echo(json.dumps(line))


async def _serve(agent_options: dict[str, Any], sensor: SensorSource | None, as_json: bool) -> None:
    on_event = _json_event if as_json else _printer(agent_options["endpoint"])
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # SIGTERM (systemd, a supervisor, kill) ends the agent as Ctrl-C does: de-registered, state saved.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        device = await Agent.start(**agent_options, sensor=sensor, on_event=on_event)
        try:
            await stop.wait()
        finally:
            await device.stop()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def agent(
    ctx: typer.Context,
    board: str = typer.Option(..., "--board", help="Board id to emulate, see 'boards list'."),
    endpoint: str = typer.Option(..., "--endpoint", help="LwM2M endpoint name, unique in the fleet."),
    runtime: str | None = typer.Option(
        None,
        "--runtime",
        help="The runtime the device's firmware runs: tflm, native, litert (default: the board's first).",
    ),
    server: list[str] | None = typer.Option(
        None,
        "--server",
        metavar="URI",
        help="The LwM2M server's URI: coaps:// with the key 'devices provision' put in --state-dir "
        "(default: where 'serve' with this store's settings listens, coaps://127.0.0.1:5684). Repeat it "
        "for servers on one store to fail over between, in order.",
    ),
    state_dir: Path = typer.Option(
        ..., "--state-dir", help="Where slots, update state and downloads persist across restarts."
    ),
    public_key: Path | None = typer.Option(
        None,
        "--public-key",
        help="The server's package-signing public key (.pub hex, PEM or raw); default: this store's.",
    ),
    sensor: str = typer.Option(
        "gestures", "--sensor", help="Input windows: gestures[:SEED], replay:PATH, watch:DIR or none."
    ),
    rate: float = typer.Option(10.0, "--rate", help="Inferences per second."),
    lifetime: int = typer.Option(60, "--lifetime", help="Registration lifetime in seconds."),
    collect: str | None = typer.Option(
        None, "--collect", help="Upload sensor windows into this dataset on the server (created if new)."
    ),
    label: str | None = typer.Option(
        None, "--label", help="The class the collected windows show; unlabelled without it."
    ),
    collect_every: int = typer.Option(1, "--collect-every", min=1, help="Collect every N-th window."),
    hop_port: int = typer.Option(
        0,
        "--hop-port",
        min=0,
        max=65535,
        help="UDP port a pipeline relay takes hop messages on (DTLS-PSK), once the server names its "
        "upstream nodes; 0 picks a free one.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print each event as one JSON line."),
) -> None:
    """Run a device agent: register, report capabilities, run the model, install signed updates."""
    collection = parse_collection(collect, label, collect_every)
    context = get_context(ctx)
    profile = context.catalog.board(board).running(runtime)
    servers = server_uris(server or [default_server_uri(context)])
    options = {
        "board": profile,
        "endpoint": endpoint,
        "server_uri": servers,
        "state_dir": state_dir,
        "public_key": trusted_key(context.settings, public_key),
        "lifetime": lifetime,
        "rate_hz": rate,
        "collect": collection,
        "hop_port": hop_port,
    }
    source = parse_sensor(sensor)
    err_console.print(
        f"agent {endpoint} ({profile.name}) -> {', '.join(servers)}; Ctrl-C stops it", highlight=False
    )
    asyncio.run(_serve(options, source, as_json))
    err_console.print("agent stopped")
