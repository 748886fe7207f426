"""Benchmark how many registered devices one server holds, and how it absorbs a restart's storm.

A fresh store, ``tinymlaas serve`` (DTLS) on a free UDP port and ``tinymlaas fleet spawn`` with
``--devices`` agents (10,000 by default) over ``--processes`` processes, each agent provisioned with its
own key, registering with ``--lifetime`` second lifetimes (60) and sending its Updates at 40-50 % of it.
Three phases, each timed from the store (a device counts once the server recorded it online):

1. registration: from the fleet's start until every device is online (50 %, 95 %, all);
2. holding: ``--hold`` seconds (two lifetimes by default) with every device sending its Updates; the
   server's CPU % of one core, its RSS, and how many devices the server set offline meanwhile (a
   lifetime passed without an Update it could take);
3. restart: the server is stopped (SIGTERM: it sets every device offline, as a restart does) and
   started again on the same port and store; from its start until as many devices as were online
   before are online again (50 %, 95 %, all). The agents find the server forgot them (their DTLS
   sessions and registrations went with it) and register anew, backing off with jitter.

Writes ``bench/results/registrations.json`` (or ``--out``) and prints a table.

    python bench/registrations.py [--devices 10000] [--processes 4] [--lifetime 60] [--hold 120]
"""

from __future__ import annotations

import argparse
import json
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select

from fleet import (
    BenchFailed,
    Processes,
    ProcessSampler,
    _check_alive,
    _free_udp_port,
    _interruptible,
    _tail,
    _wait_for_server,
)
from tinymlaas.deploy.signing import PUBLIC_KEY_NAME
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.tables import DeviceEventRow, DeviceRow

RESULTS = Path(__file__).parent / "results"
console = Console(width=170)


def _online(context: Context) -> int:
    with context.session() as session:
        return int(session.scalar(select(func.count()).select_from(DeviceRow).where(DeviceRow.online)) or 0)


def _offline_events(context: Context, since_id: int) -> tuple[int, int]:
    """Lifetime-expired departures recorded after event ``since_id``, and the newest event id."""
    with context.session() as session:
        newest = int(session.scalar(select(func.max(DeviceEventRow.id))) or 0)
        expired = session.scalar(
            select(func.count())
            .select_from(DeviceEventRow)
            .where(DeviceEventRow.id > since_id, DeviceEventRow.kind == "offline")
            .where(DeviceEventRow.detail["reason"].as_string() == "lifetime expired")
        )
        return int(expired or 0), newest


def _until_online(
    context: Context, devices: int, started: float, timeout: float, what: str, watched: list[Any]
) -> dict[str, float | int | None]:
    """Seconds from ``started`` until half, 95 % and all of ``devices`` were online (None: not within
    ``timeout``), and how many were online at the end."""
    marks: dict[str, float | None] = {"half_s": None, "p95_s": None, "all_s": None}
    shown = -1
    while True:
        online = _online(context)
        now = time.monotonic() - started
        for key, share in (("half_s", 0.5), ("p95_s", 0.95), ("all_s", 1.0)):
            if marks[key] is None and online >= share * devices:
                marks[key] = round(now, 1)
        if online != shown and (online == devices or int(now) % 5 == 0):
            console.print(f"{what}: {online}/{devices} online ({now:.0f} s)", highlight=False)
            shown = online
        if online >= devices or now > timeout:
            return {**marks, "online": online}
        for process, name, log in watched:
            _check_alive(process, name, log)
        time.sleep(1.0)


def _run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    store = work / "store"
    context = Context(Settings(data_dir=store))
    port = _free_udp_port()
    procs = Processes()
    server_log, fleet_log, restarted_log = work / "serve.log", work / "fleet.log", work / "serve-again.log"
    serve = ["serve", "--coaps-port", str(port), "--no-http"]
    server = procs.start("serve", serve, store, server_log)
    server_sampler = ProcessSampler(server.pid)
    server_sampler.start()
    try:
        _wait_for_server(server, server_log, 60)
        spawn = ["fleet", "spawn", "--count", str(args.devices), "--board", args.board]
        spawn += ["--server", f"coaps://127.0.0.1:{port}", "--state-dir", str(work / "agents")]
        spawn += ["--public-key", str(store / "keys" / PUBLIC_KEY_NAME), "--sensor", "none"]
        spawn += ["--lifetime", str(args.lifetime), "--processes", str(args.processes)]
        started = time.monotonic()
        fleet = procs.start("fleet", spawn, store, fleet_log)
        fleet_sampler = ProcessSampler(fleet.pid)
        fleet_sampler.start()
        watched = [(server, "tinymlaas serve", server_log), (fleet, "tinymlaas fleet spawn", fleet_log)]
        registration = _until_online(context, args.devices, started, args.timeout, "registering", watched)
        registration["server"] = server_sampler.between(started, time.monotonic())
        if registration["online"] < args.devices:
            # Held and restarted as far as it got: the figures say how many were online.
            console.print(
                f"[yellow]{registration['online']}/{args.devices} online after {args.timeout:g} s[/]"
            )

        _, before_hold = _offline_events(context, 0)
        hold_start = time.monotonic()
        console.print(f"holding {args.devices} devices for {args.hold:g} s", highlight=False)
        while time.monotonic() - hold_start < args.hold:
            for process, name, log in watched:
                _check_alive(process, name, log)
            time.sleep(1.0)
        hold_end = time.monotonic()
        expired, _ = _offline_events(context, before_hold)
        holding = {
            "seconds": args.hold,
            "online_at_end": _online(context),
            "set_offline_while_held": expired,
            "server": server_sampler.between(hold_start, hold_end),
            "fleet_processes": fleet_sampler.between(hold_start, hold_end),
        }

        procs.stop("serve")
        server_sampler.stop()
        server = procs.start("serve", serve, store, restarted_log)
        restarted = time.monotonic()
        server_sampler = ProcessSampler(server.pid)
        server_sampler.start()
        _wait_for_server(server, restarted_log, 60)
        watched[0] = (server, "tinymlaas serve", restarted_log)
        # Back online: as many as were online before the restart.
        before = holding["online_at_end"]
        restart = _until_online(context, before, restarted, args.timeout, "after the restart", watched)
        restart["of"] = before
        restart["server"] = server_sampler.between(restarted, time.monotonic())
        fleet_sampler.stop()
    except BenchFailed as exc:
        raise BenchFailed(
            f"{exc}\n--- serve ---\n{_tail(server_log)}\n--- fleet ---\n{_tail(fleet_log)}"
        ) from None
    finally:
        procs.stop("fleet", signal.SIGINT, grace=120.0)
        procs.stop("serve")
        server_sampler.stop()
    return {"registration": registration, "holding": holding, "restart": restart}


def _print(result: dict[str, Any]) -> None:
    table = Table(
        title=f"{result['devices']} devices, {result['lifetime_s']} s lifetimes, DTLS, one 2-core host"
    )
    for column in (
        "phase",
        "50 % online s",
        "95 % s",
        "all s",
        "server CPU % (1 core)",
        "server RSS MiB",
        "note",
    ):
        table.add_column(column, justify="right")
    registration, holding, restart = result["registration"], result["holding"], result["restart"]
    table.add_row(
        "registration", str(registration["half_s"]), str(registration["p95_s"]), str(registration["all_s"]),
        str(registration["server"]["cpu_percent"]), str(registration["server"]["peak_rss_mib"]),
        f"{registration['online']}/{result['devices']} online",
    )  # fmt: skip
    server = holding["server"]
    held = f"{holding['online_at_end']} online at the end, {holding['set_offline_while_held']} set offline"
    table.add_row(
        f"holding {holding['seconds']:g} s", "", "", "", str(server["cpu_percent"]),
        str(server["peak_rss_mib"]), held,
    )  # fmt: skip
    table.add_row(
        "restart storm", str(restart["half_s"]), str(restart["p95_s"]), str(restart["all_s"]),
        str(restart["server"]["cpu_percent"]), str(restart["server"]["peak_rss_mib"]),
        f"{restart['online']}/{restart['of']} back online",
    )  # fmt: skip
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=4, help="Processes the agents are split over.")
    parser.add_argument("--lifetime", type=int, default=60, help="Registration lifetime in seconds.")
    parser.add_argument("--hold", type=float, default=None, help="Seconds to hold (default: two lifetimes).")
    parser.add_argument("--timeout", type=float, default=900, help="Seconds each phase may take.")
    parser.add_argument("--board", default="nano33ble")
    parser.add_argument("--out", type=Path, default=RESULTS / "registrations.json")
    args = parser.parse_args()
    if args.devices < 1 or args.lifetime < 10:
        parser.error("--devices is at least 1 and --lifetime at least 10 s")
    args.hold = 2.0 * args.lifetime if args.hold is None else args.hold
    with _interruptible(), tempfile.TemporaryDirectory(prefix="tinymlaas-registrations-") as tmp:
        try:
            phases = _run(args, Path(tmp))
        except BenchFailed as exc:
            console.print(f"[red]{exc}[/]", highlight=False)
            raise SystemExit(1) from None
    result = {"devices": args.devices, "lifetime_s": args.lifetime, "processes": args.processes, **phases}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    _print(result)
    console.print(f"written to {args.out}", highlight=False)


if __name__ == "__main__":
    main()
