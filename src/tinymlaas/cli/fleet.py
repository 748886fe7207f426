"""``tinymlaas fleet spawn``: many emulated devices in one process, for campaigns worth watching."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import typer

from tinymlaas.agent import AgentEvent, SensorSource
from tinymlaas.agent.client import server_uris
from tinymlaas.agent.fleet import spawn_fleet
from tinymlaas.cli._shared import console, err_console, get_context
from tinymlaas.cli.agent import event_line, parse_collection, parse_sensor, trusted_key
from tinymlaas.errors import InvalidInput, NotFound
from tinymlaas.lwm2m.core import DeviceCredentials
from tinymlaas.lwm2m.linkemu import PROFILES, LinkProfile, link_profile
from tinymlaas.services.context import Context
from tinymlaas.services.provisioning import default_server_uri, provision_device

__all__ = ["app"]

app = typer.Typer(help="Fleets of emulated devices in one process.", no_args_is_help=True)

# Per-block download and state-machine lines from hundreds of agents would drown the ones that matter.
_SHOWN = frozenset(
    {
        "registered",
        "registration-failed",
        "failed-over",
        "deregistered",
        "installed",
        "install-failed",
        "collect-dropped",
        "collect-rejected",
    }
)


def _print_event(endpoint: str, event: AgentEvent) -> None:
    if event.kind not in _SHOWN:
        return
    style = "red" if event.kind.endswith("failed") or event.kind.startswith("collect-") else "cyan"
    console.print(f"{endpoint} {event_line(endpoint, event, style)}", highlight=False, soft_wrap=True)


def _sensor_factory(spec: str) -> Callable[[int], SensorSource | None]:
    """A fresh source per agent, each gesture stream seeded with its index so devices differ."""
    parse_sensor(spec)  # rejects a bad spec before any agent starts
    if spec == "gestures":
        return lambda index: parse_sensor(f"gestures:{index}")
    return lambda index: parse_sensor(spec)


async def _serve(options: dict[str, Any], link: LinkProfile | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Handlers of its own: a shell starts a background job with SIGINT ignored, and Python then never
    # turns Ctrl-C (or `kill -INT`) into KeyboardInterrupt; SIGTERM stops the fleet the same way.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    fleet = await spawn_fleet(**options, link=link, on_event=_print_event)
    try:
        await stop.wait()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        await fleet.stop()
        for endpoint, stats in fleet.link_stats().items():
            up, down = stats.uplink, stats.downlink
            err_console.print(
                f"{endpoint} {fleet.links[endpoint].profile.name}: "
                f"up {up.delivered}/{up.received} delivered, {up.dropped} dropped; "
                f"down {down.delivered}/{down.received} delivered, {down.dropped} dropped",
                highlight=False,
                soft_wrap=True,
            )


def _credentials(
    context: Context, board: str, server: str, state_dir: Path
) -> Callable[[str], DeviceCredentials]:
    """Each agent's credentials: those in its state directory, else a key provisioned now."""

    def credentials(endpoint: str) -> DeviceCredentials:
        own = state_dir / endpoint
        found = DeviceCredentials.load(own)
        if found is not None:
            return found
        made = provision_device(context, endpoint, board, server_uri=server, state_dir=own)
        err_console.print(f"{endpoint} provisioned: its key is in {own}", highlight=False, soft_wrap=True)
        return made

    return credentials


@app.command("spawn")
def spawn(
    ctx: typer.Context,
    count: int = typer.Option(..., "--count", min=1, help="How many agents to run."),
    board: str = typer.Option(..., "--board", help="Board id every agent emulates, see 'boards list'."),
    runtime: str | None = typer.Option(
        None,
        "--runtime",
        help="The runtime every agent's firmware runs: tflm, native, litert (default: the board's first).",
    ),
    server: list[str] | None = typer.Option(
        None,
        "--server",
        metavar="URI",
        help="The LwM2M server's URI, coaps:// for DTLS (default: where 'serve' with this store's "
        "settings listens, coaps://127.0.0.1:5684). Repeat it for servers on one store every agent "
        "fails over between, in order.",
    ),
    state_dir: Path = typer.Option(
        ..., "--state-dir", help="Each agent keeps its slots and update state in a sub-directory here."
    ),
    public_key: Path | None = typer.Option(
        None,
        "--public-key",
        help="The server's package-signing public key (.pub hex, PEM or raw); default: this store's.",
    ),
    prefix: str | None = typer.Option(None, "--prefix", help="Endpoint names are PREFIX-000...; board id."),
    link: str | None = typer.Option(
        None, "--link", help=f"Emulated radio link per agent: {', '.join(PROFILES)}; none by default."
    ),
    loss: float | None = typer.Option(
        None,
        "--loss",
        help="Probability (0..1) that a datagram is lost, each way; replaces the link's own "
        "figure, or applies to loopback when no --link is named.",
    ),
    duplicate: float | None = typer.Option(
        None,
        "--duplicate",
        help="Probability (0..1) that a datagram arrives twice, each way; like --loss.",
    ),
    seed: int = typer.Option(0, "--seed", help="Link losses of agent i are drawn from SEED + i."),
    sensor: str = typer.Option(
        "none", "--sensor", help="Input windows per agent: gestures[:SEED], replay:PATH, watch:DIR or none."
    ),
    rate: float = typer.Option(1.0, "--rate", help="Inferences per second per agent."),
    lifetime: int = typer.Option(60, "--lifetime", help="Registration lifetime in seconds."),
    collect: str | None = typer.Option(
        None, "--collect", help="Every agent uploads its sensor windows into this dataset (needs --sensor)."
    ),
    label: str | None = typer.Option(
        None, "--label", help="The class the collected windows show; unlabelled without it."
    ),
    collect_every: int = typer.Option(1, "--collect-every", min=1, help="Collect every N-th window."),
    provision: bool = typer.Option(
        True,
        "--provision/--no-provision",
        help="Give an agent without credentials in its state directory a key from this store "
        "(the server's, on this machine) before it starts.",
    ),
) -> None:
    """Run COUNT agents until Ctrl-C, printing registrations and installs as they happen."""
    context = get_context(ctx)
    try:
        profile = context.catalog.board(board)
    except NotFound as exc:
        raise InvalidInput(exc.detail) from None
    profile = profile.running(runtime)
    radio = link_profile(link, loss=loss, duplicate=duplicate)
    servers = server_uris(server or [default_server_uri(context)])
    options: dict[str, Any] = {
        "count": count,
        "board": profile,
        "server_uri": servers,
        "state_dir": state_dir,
        "public_key": trusted_key(context.settings, public_key),
        "prefix": prefix,
        "seed": seed,
        "sensor_factory": _sensor_factory(sensor),
        "rate_hz": rate,
        "lifetime": lifetime,
        "collect": parse_collection(collect, label, collect_every),
        "credentials": (
            _credentials(context, profile.id, servers[0], state_dir)
            if provision and servers[0].startswith("coaps://")
            else None
        ),
    }
    via = f" over {radio.name}" if radio else ""
    err_console.print(
        f"{count} x {profile.name} -> {', '.join(servers)}{via}; Ctrl-C stops them", highlight=False
    )
    asyncio.run(_serve(options, radio))
    err_console.print("fleet stopped")
