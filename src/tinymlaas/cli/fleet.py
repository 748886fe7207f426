"""``tinymlaas fleet spawn``: many emulated devices, for campaigns worth watching.

One process with one event loop holds hundreds of agents; past what one core keeps up with (a thousand
agents each behind an emulated link), ``--processes N`` splits them over N processes, each a
``fleet spawn`` of its own for a contiguous range of the agents (names, seeds and hop ports as one
fleet would give them). The parent relays their lines and hands Ctrl-C or SIGTERM on to each.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import typer

from tinymlaas import heap
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

app = typer.Typer(help="Fleets of emulated devices, in one process or several.", no_args_is_help=True)

MAX_PROCESSES = 64

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


def _split(count: int, processes: int) -> list[tuple[int, int]]:
    """(first index, count) per process: contiguous ranges whose sizes differ by at most one."""
    size, extra = divmod(count, processes)
    parts, first = [], 0
    for part in range(processes):
        length = size + (part < extra)
        parts.append((first, length))
        first += length
    return parts


async def _relay(stream: asyncio.StreamReader, out: IO[str]) -> None:
    """Copy a child's lines whole, so lines of several children never interleave mid-line."""
    while line := await stream.readline():
        out.write(line.decode("utf-8", errors="replace"))
        out.flush()


async def _serve_split(args: list[str], parts: list[tuple[int, int]]) -> int:
    """Run one ``fleet spawn`` child per part until Ctrl-C or SIGTERM, which each child is given; the
    worst exit status. A child that ends by itself stops the others: the fleet is no longer whole."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    children: list[asyncio.subprocess.Process] = []
    relays: list[asyncio.Task[None]] = []
    try:
        for first, count in parts:
            # Click keeps the last value of an option given twice, so these override the parent's own.
            child_args = [*args, "--count", str(count), "--first-index", str(first), "--processes", "1"]
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tinymlaas",
                *child_args,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            children.append(child)
            assert child.stdout is not None and child.stderr is not None
            relays += [
                asyncio.create_task(_relay(child.stdout, sys.stdout)),
                asyncio.create_task(_relay(child.stderr, sys.stderr)),
            ]
        ended = [asyncio.create_task(child.wait()) for child in children]
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([stopping, *ended], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        for child in children:
            if child.returncode is None:
                child.send_signal(signal.SIGINT)
        codes = [await child.wait() for child in children]
        await asyncio.gather(*relays)
    return max((abs(code) for code in codes), default=0)


async def _serve(options: dict[str, Any], link: LinkProfile | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    # Handlers of its own: a shell starts a background job with SIGINT ignored, and Python then never
    # turns Ctrl-C (or `kill -INT`) into KeyboardInterrupt; SIGTERM stops the fleet the same way.
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    fleet = await spawn_fleet(**options, link=link, on_event=_print_event)
    heap.settle()
    try:
        await stop.wait()
    finally:
        # The handlers stay while the agents de-register: a fleet split over processes gets Ctrl-C
        # from the terminal and once more from its parent, and the second must not cut the first short.
        try:
            await fleet.stop()
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
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
    processes: int = typer.Option(
        1,
        "--processes",
        min=1,
        max=MAX_PROCESSES,
        help="Split the agents over this many processes, each with its own event loop (one per core).",
    ),
    first_index: int | None = typer.Option(
        None, "--first-index", min=0, hidden=True, help="Set by --processes: this child's first agent."
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
    options["first_index"] = first_index or 0
    part = first_index is not None  # one child of a split fleet: the parent prints the fleet's lines
    via = f" over {radio.name}" if radio else ""
    if not part:
        split = f" in {processes} processes" if processes > 1 else ""
        err_console.print(
            f"{count} x {profile.name} -> {', '.join(servers)}{via}{split}; Ctrl-C stops them",
            highlight=False,
        )
    if processes > 1 and count > 1:
        if options["credentials"] is not None:
            # Keys are made here, one at a time, so the children never write the store at once.
            for index in range(count):
                options["credentials"](f"{prefix or profile.id}-{index:03d}")
        code = asyncio.run(_serve_split(sys.argv[1:], _split(count, min(processes, count))))
        err_console.print("fleet stopped")
        raise typer.Exit(code)
    asyncio.run(_serve(options, radio))
    if not part:
        err_console.print("fleet stopped")
