"""Benchmark an over-the-air update of a fleet of emulated devices, with and without packet loss.

One real int8 module is built for the board, by default the digits CNN: its signed package weighs
about 75 KB (the gestures one, about 137 KB, is over the 20-100 KB this benchmark is defined for).
Then, for each loss figure, in a fresh copy of that store: ``tinymlaas serve`` on a free UDP port and
``tinymlaas fleet spawn`` with ``--devices`` agents, each behind its own emulated loopback link that
loses that fraction of datagrams each way (0 included, so every figure takes the same path); the
package download crosses the link too. Once every device is online and has reported what it can run
(or the wait is over: the others then count as failures), one single-stage campaign
(``tinymlaas deploy --to board:BOARD``) that may fail on every device rather than halt, so failures
are counted, not hidden. A device counts as a success only after it downloaded the package
block-wise, verified its signature, installed it and passed its TFLM self-test.

Reported per loss figure: the time until every device was ready; total rollout time (campaign
created to the last outcome recorded); per-device p50/p95/max as the server records them (Package URI
written to outcome seen, so the campaign runner's polling delay is part of it); successes, failures
and their reasons; the server's peak RSS, CPU seconds and CPU % of one core during the rollout; the
datagrams the links dropped, so the loss applied is visible, and all datagrams per package block
installed. ``--processes N`` splits the fleet over N processes (``fleet spawn --processes``). Writes
``bench/results/fleet.json`` (or ``--out``) and prints a table.

    python bench/fleet.py [--devices 200] [--loss 0,0.1] [--link lte-m] [--processes 1] [--timeout 900]
        [--out PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import IO, Any

from rich.console import Console
from rich.table import Table

from tinymlaas.deploy.package import sign_package
from tinymlaas.deploy.signing import PUBLIC_KEY_NAME, load_or_create_signing_key
from tinymlaas.services.campaigns import show_campaign
from tinymlaas.services.compiling import module_package
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import list_devices, show_device
from tinymlaas.settings import Settings

RESULTS = Path(__file__).parent / "results"
CLI = [sys.executable, "-m", "tinymlaas"]
PACKAGE_BYTES = (20_000, 100_000)
CAMPAIGN_OVER = frozenset({"completed", "halted", "cancelled", "rolled_back"})
UNFINISHED = frozenset({"pending", "sent", "downloading", "installing"})
MIB = 1024 * 1024
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
LINK_LINE = re.compile(
    r"^\S+ .*: up (\d+)/(\d+) delivered, (\d+) dropped; down (\d+)/(\d+) delivered, (\d+) dropped$"
)

# `serve` names its server id in this line (``LwM2M server srv_... listening on ...``).
SERVER_LISTENING = re.compile(r"^LwM2M server (\S+ )?listening on ", re.MULTILINE)

# Wide enough for every column even when the output is a file or a CI log.
console = Console(width=170)


class BenchFailed(Exception):
    """The run cannot go on; the message says why, with the log lines that show it."""


def _cli(args: list[str], store: Path) -> str:
    done = subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env={**os.environ, "TINYMLAAS_DATA_DIR": str(store)}
    )
    if done.returncode != 0:
        raise BenchFailed(f"tinymlaas {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _seconds_between(start: str, end: str) -> float:
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as numpy's default does."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass(frozen=True)
class Build:
    """The module every scenario deploys, and the store it was built in."""

    store: Path
    module: str
    variant: str
    package_bytes: int
    signed_package_bytes: int
    build_s: float


def _build(store: Path, dataset: str, board: str) -> Build:
    """Run the real lifecycle once; the int8 module for ``board`` is what the fleet takes."""
    started = time.monotonic()
    console.print(f"building the {dataset} int8 module for {board} in {store} ...", highlight=False)
    _cli(["datasets", "create", dataset, "--generator", dataset], store)
    report = json.loads(_cli(["lifecycle", "run", "--dataset", dataset, "--boards", board, "--json"], store))
    rows = [r for r in report["variants"] if r["board"] == board and r["quantization"] == "int8"]
    if not rows or not rows[0]["fits"] or rows[0]["module"] is None:
        raise BenchFailed(f"no int8 module of {dataset} fits {board}: {rows}")
    row = rows[0]
    context = Context(Settings(data_dir=store))
    unsigned = module_package(context, row["module"])
    # The key `serve` would create on first start; it finds this one and signs with it. This copy is
    # only weighed: the campaign signs its own, with the next sequence of the model line.
    signed = sign_package(unsigned, load_or_create_signing_key(store / "keys"), sequence=1)
    low, high = PACKAGE_BYTES
    if not low <= len(signed) <= high:
        raise BenchFailed(f"the signed package weighs {len(signed)} bytes, outside {low}..{high}")
    return Build(
        store=store,
        module=row["module"],
        variant=row["variant"],
        package_bytes=len(unsigned),
        signed_package_bytes=len(signed),
        build_s=round(time.monotonic() - started, 1),
    )


@dataclass
class _Sample:
    at: float
    cpu_s: float
    rss_bytes: int


def _children(pid: int) -> list[int]:
    """The direct children of ``pid`` (Linux /proc), empty once it is gone."""
    try:
        tasks = Path(f"/proc/{pid}/task").iterdir()
        found: list[int] = []
        for task in tasks:
            found += [int(child) for child in (task / "children").read_text().split()]
        return found
    except OSError:
        return []


class ProcessSampler(threading.Thread):
    """CPU time and RSS of one process and its children (``fleet spawn --processes``) from /proc,
    every ``interval`` seconds, until stopped; RSS is their sum."""

    def __init__(self, pid: int, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.samples: list[_Sample] = []
        self._stop_event = threading.Event()

    def read(self) -> _Sample | None:
        cpu_s, rss = 0.0, 0
        for pid in (self.pid, *_children(self.pid)):
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                if pid == self.pid:
                    return None
                continue
            # Fields after the command name, which may itself hold spaces and parentheses.
            fields = stat.rsplit(")", 1)[1].split()
            cpu_s += (int(fields[11]) + int(fields[12])) / TICKS
            rss += int(fields[21]) * PAGE
        return _Sample(time.monotonic(), cpu_s, rss)

    def run(self) -> None:
        while not self._stop_event.is_set():
            sample = self.read()
            if sample is not None:
                self.samples.append(sample)
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join()

    def between(self, start: float, end: float) -> dict[str, float | None]:
        """Peak RSS, CPU seconds and CPU % of one core over [start, end] of ``time.monotonic()``."""
        window = [s for s in self.samples if start <= s.at <= end]
        if len(window) < 2:
            return {"peak_rss_mib": None, "cpu_s": None, "cpu_percent": None}
        cpu = window[-1].cpu_s - window[0].cpu_s
        wall = window[-1].at - window[0].at
        return {
            "peak_rss_mib": round(max(s.rss_bytes for s in window) / MIB, 1),
            "cpu_s": round(cpu, 1),
            "cpu_percent": round(100 * cpu / wall, 1) if wall > 0 else None,
        }


@dataclass
class Processes:
    """Child processes, each in its own session so one signal reaches its whole group."""

    running: dict[str, tuple[subprocess.Popen[bytes], IO[bytes]]] = field(default_factory=dict)

    def start(
        self, name: str, args: list[str], store: Path, log: Path, extra_env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        out = log.open("wb")
        env = {**os.environ, "TINYMLAAS_DATA_DIR": str(store), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        process = subprocess.Popen(
            [*CLI, *args], stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        self.running[name] = (process, out)
        return process

    def stop(self, name: str, sig: signal.Signals = signal.SIGTERM, grace: float = 15.0) -> None:
        """Signal the group, wait ``grace`` seconds for a clean exit, then kill it; killed at once if
        the wait itself is interrupted, so no child outlives the benchmark."""
        entry = self.running.get(name)
        if entry is None:
            return
        process, out = entry
        try:
            os.killpg(process.pid, sig)
            process.wait(grace)
        except ProcessLookupError:
            pass
        except BaseException as exc:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise
        finally:
            del self.running[name]
            out.close()

    def stop_all(self) -> None:
        for name in reversed(list(self.running)):
            self.stop(name, grace=5.0)


def _tail(log: Path, lines: int = 30) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _check_alive(process: subprocess.Popen[bytes], what: str, log: Path) -> None:
    if process.poll() is not None:
        raise BenchFailed(f"{what} exited with {process.returncode}:\n{_tail(log)}")


def _wait_for_server(process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not SERVER_LISTENING.search(log.read_text(errors="replace")):
        _check_alive(process, "tinymlaas serve", log)
        if time.monotonic() > deadline:
            raise BenchFailed(f"tinymlaas serve did not start in {timeout:g} s:\n{_tail(log)}")
        time.sleep(0.2)


def _socket_buffer_drops() -> int | None:
    """Datagrams the kernel dropped because a socket's receive buffer was full, host-wide so far (UDP
    RcvbufErrors in /proc/net/snmp): losses the links did not make, counted apart. None off Linux."""
    try:
        lines = [line.split() for line in Path("/proc/net/snmp").read_text().splitlines()]
    except OSError:
        return None
    header, values = [line for line in lines if line and line[0] == "Udp:"][:2]
    return int(values[header.index("RcvbufErrors")])


def _ready_devices(context: Context) -> int:
    """Devices online that reported their TinyML Runtime object, as the compatibility gate needs."""
    return sum(1 for d in _devices(context) if d["online"] and "runtime" in d["capabilities"])


def _link_totals(log: Path) -> dict[str, int]:
    """Datagram counts summed over the relays, from the lines ``fleet spawn`` prints when it stops."""
    totals = Counter[str]()
    for line in log.read_text(errors="replace").splitlines():
        match = LINK_LINE.match(line.strip())
        if match is None:
            continue
        up_delivered, up_received, up_dropped, down_delivered, down_received, down_dropped = map(
            int, match.groups()
        )
        totals.update(
            up_received=up_received,
            up_dropped=up_dropped,
            up_delivered=up_delivered,
            down_received=down_received,
            down_dropped=down_dropped,
            down_delivered=down_delivered,
        )
    return dict(totals)


def _general(reason: str) -> str:
    """A failure reason without the addresses, block numbers and seconds that make each one unique."""
    reason = re.sub(r"coap://\S+", "URI", reason)
    reason = re.sub(r"block \d+", "block N", reason)
    return re.sub(r"\d+ s \(timeout", "N s (timeout", reason)


def _installation_summary(campaign: dict[str, Any]) -> dict[str, Any]:
    installations = campaign["installations"]
    finished = [i for i in installations if i["finished_at"] is not None]
    # Successes only: a failure's time is mostly the runner's timeout, which says nothing of the update.
    per_device = [
        _seconds_between(i["started_at"], i["finished_at"])
        for i in finished
        if i["state"] == "succeeded" and i["started_at"] is not None
    ]
    failures = []
    for i in installations:
        if i["state"] == "succeeded":
            continue
        detail = i["detail"]
        reason = "; ".join(
            [
                *detail.get("reasons", []),
                *(str(detail[k]) for k in ("status_reason", "error") if detail.get(k)),
            ]
        )
        failures.append(
            {
                "endpoint": i["endpoint"],
                "state": i["state"],
                "update_result": i["update_result_text"],
                "reason": reason or None,
            }
        )
    last = max((i["finished_at"] for i in finished), default=None)
    p50, p95 = _percentile(per_device, 0.5), _percentile(per_device, 0.95)
    return {
        "rollout_s": round(_seconds_between(campaign["created_at"], last), 2) if last else None,
        "per_device_s": {
            "p50": None if p50 is None else round(p50, 2),
            "p95": None if p95 is None else round(p95, 2),
            "min": round(min(per_device), 2) if per_device else None,
            "max": round(max(per_device), 2) if per_device else None,
        },
        "succeeded": sum(1 for i in installations if i["state"] == "succeeded"),
        "failed": sum(1 for i in installations if i["state"] == "failed"),
        "refused": sum(1 for i in installations if i["state"] == "refused"),
        "unfinished": sum(1 for i in installations if i["state"] in UNFINISHED),
        "failures": failures,
        "failure_reasons": dict(
            Counter(
                f"{f['state']}: {f['update_result'] or '-'}: {_general(f['reason'] or '-')}" for f in failures
            )
        ),
    }


def _scenario(
    security: str, loss: float, args: argparse.Namespace, build: Build, work: Path, procs: Processes
) -> dict[str, Any]:
    link = args.link or "loopback"
    tag = f"{security}, {link}, loss {100 * loss:g} %:"
    scenario_dir = work / f"{security}-{link}-loss-{loss:g}"
    if scenario_dir.exists():
        shutil.rmtree(scenario_dir)
    store = scenario_dir / "store"
    shutil.copytree(build.store, store)
    context = Context(Settings(data_dir=store))
    port = _free_udp_port()
    server_log, fleet_log = scenario_dir / "serve.log", scenario_dir / "fleet.log"

    # DTLS: every agent is provisioned by `fleet spawn` into this store before it starts (the keys
    # are made before the clock for registration starts). NoSec: the development setting, as before.
    if security == "dtls":
        listen, env, server_uri = ["--coaps-port", str(port)], {}, f"coaps://127.0.0.1:{port}"
    else:
        listen, env = ["--coap-port", str(port)], {"TINYMLAAS_ALLOW_NOSEC": "1"}
        server_uri = f"coap://127.0.0.1:{port}"
    server = procs.start("serve", ["serve", *listen, "--no-http"], store, server_log, env)
    server_sampler = ProcessSampler(server.pid)
    server_sampler.start()
    try:
        _wait_for_server(server, server_log, 60)
        spawn = ["fleet", "spawn", "--count", str(args.devices), "--board", args.board]
        spawn += ["--server", server_uri, "--state-dir", str(scenario_dir / "agents")]
        spawn += ["--public-key", str(store / "keys" / PUBLIC_KEY_NAME), "--sensor", "none"]
        spawn += ["--loss", f"{loss:g}", "--seed", str(args.seed), "--processes", str(args.processes)]
        spawn += ["--link", link]
        registering = time.monotonic()
        drops_before = _socket_buffer_drops()
        fleet = procs.start("fleet", spawn, store, fleet_log, env)
        fleet_sampler = ProcessSampler(fleet.pid)
        fleet_sampler.start()
        try:
            registration = _wait_for_registrations(args, context, fleet, fleet_log, registering, tag)
            drops_registered = _socket_buffer_drops()
            watched = {"tinymlaas serve": (server, server_log), "tinymlaas fleet spawn": (fleet, fleet_log)}
            result = _rollout(args, build, store, context, watched, tag)
            rollout_window = result.pop("_window")
            drops_after = _socket_buffer_drops()
        finally:
            # SIGINT makes `fleet spawn` de-register its agents and print each relay's counters.
            procs.stop("fleet", signal.SIGINT, grace=60.0)
            fleet_sampler.stop()
    finally:
        procs.stop("serve")
        server_sampler.stop()
    start, end = rollout_window
    links = _link_totals(fleet_log)
    sent = links.get("up_received", 0) + links.get("down_received", 0)
    dropped = links.get("up_dropped", 0) + links.get("down_dropped", 0)
    blocks = -(-build.signed_package_bytes // 1024)
    delivered = result["succeeded"] * blocks
    return {
        "security": security,
        "link_profile": link,
        "loss": loss,
        "devices": args.devices,
        **registration,
        **result,
        "server": {
            **server_sampler.between(start, end),
            "peak_rss_mib_overall": server_sampler.between(0, float("inf"))["peak_rss_mib"],
        },
        "fleet_process": fleet_sampler.between(start, end),
        "link": {
            **links,
            "measured_loss": round(dropped / sent, 4) if sent else None,
            # Every datagram the links carried (registration, reads, telemetry and the download, both
            # ways) over the package blocks that reached a device that installed it: 2 is one request
            # and one answer per block with nothing else on the link.
            "datagrams_per_block": round(sent / delivered, 2) if delivered else None,
        },
        "socket_buffer_drops": None
        if drops_before is None or drops_registered is None or drops_after is None
        else {"registration": drops_registered - drops_before, "rollout": drops_after - drops_registered},
        "logs": str(scenario_dir),
    }


def _devices(context: Context) -> list[dict[str, Any]]:
    return [device.model_dump() for device in list_devices(context)]


def _not_ready(context: Context, expected: list[str]) -> dict[str, str]:
    """Why each device that cannot take the update yet is not ready, as the store tells it."""
    devices = {d["endpoint"]: d for d in _devices(context)}
    reasons = {}
    for endpoint in expected:
        device = devices.get(endpoint)
        if device is None:
            reasons[endpoint] = "never registered"
        elif not device["online"]:
            reasons[endpoint] = "offline"
        elif "runtime" not in device["capabilities"]:
            failed = [
                e["detail"].get("error", "")
                for e in show_device(context, endpoint, 20).model_dump()["events"]
                if e["kind"] == "read_failed" and e["detail"].get("path") == "/26241/0"
            ]
            reasons[endpoint] = failed[0] if failed else "has not reported its TinyML Runtime object"
    return reasons


def _wait_for_registrations(
    args: argparse.Namespace,
    context: Context,
    fleet: subprocess.Popen[bytes],
    fleet_log: Path,
    started: float,
    tag: str,
) -> dict[str, Any]:
    """Until every device is ready or the time is up; the rollout then goes to those that are."""
    timeout = args.register_timeout or 60 + 0.3 * args.devices
    shown = -1
    last_print = 0.0
    while True:
        ready = _ready_devices(context)
        now = time.monotonic()
        if ready != shown and (now - last_print >= 5 or ready == args.devices):
            console.print(f"{tag} registered {ready}/{args.devices} ({now - started:.0f} s)", highlight=False)
            shown, last_print = ready, now
        if ready >= args.devices:
            return {"registration_s": round(now - started, 1), "ready": ready, "not_ready": {}}
        _check_alive(fleet, "tinymlaas fleet spawn", fleet_log)
        if now - started > timeout:
            break
        time.sleep(1.0)
    if ready == 0:
        raise BenchFailed(f"no device was ready after {timeout:g} s:\n{_tail(fleet_log)}")
    expected = [f"{args.board}-{index:03d}" for index in range(args.devices)]
    not_ready = _not_ready(context, expected)
    console.print(
        f"{tag} [yellow]{len(not_ready)} devices not ready after {timeout:g} s; deploying anyway[/]",
        highlight=False,
    )
    for endpoint, reason in not_ready.items():
        console.print(f"{tag}   {endpoint}: {reason}", highlight=False, soft_wrap=True)
    return {"registration_s": None, "ready": ready, "not_ready": not_ready, "waited_s": round(timeout)}


def _rollout(
    args: argparse.Namespace,
    build: Build,
    store: Path,
    context: Context,
    watched: dict[str, tuple[subprocess.Popen[bytes], Path]],
    tag: str,
) -> dict[str, Any]:
    started = time.monotonic()
    deploy = ["deploy", build.module, "--to", f"board:{args.board}", "--max-failures", "1.0", "--json"]
    campaign = json.loads(_cli(deploy, store))
    counts = ", ".join(f"{state} {n}" for state, n in campaign["counts"].items())
    console.print(
        f"{tag} campaign {campaign['id']} to {campaign['targets']} devices ({counts})", highlight=False
    )
    deadline = started + args.timeout
    last_print = 0.0
    timed_out = False
    while True:
        campaign = show_campaign(context, campaign["id"]).model_dump()
        now = time.monotonic()
        over = campaign["state"] in CAMPAIGN_OVER and not any(
            i["state"] in UNFINISHED for i in campaign["installations"]
        )
        if over or now - last_print >= 5:
            counts = ", ".join(f"{state} {n}" for state, n in campaign["counts"].items())
            console.print(
                f"{tag} {campaign['state']}: {campaign['done']}/{campaign['targets']} done ({counts}) "
                f"{now - started:.0f} s",
                highlight=False,
            )
            last_print = now
        if over:
            break
        for what, (process, log) in watched.items():
            _check_alive(process, what, log)
        if now > deadline:
            timed_out = True
            console.print(f"{tag} [red]timed out after {args.timeout:g} s[/]", highlight=False)
            break
        time.sleep(1.0)
    return {
        "campaign": campaign["id"],
        "state": campaign["state"],
        "timed_out": timed_out,
        **_installation_summary(campaign),
        "_window": (started, time.monotonic()),
    }


@contextmanager
def _interruptible() -> Iterator[None]:
    """Ctrl-C and SIGTERM both unwind, so the children are stopped on either.

    SIGINT is handled even where it was ignored (a script's background job starts so): children
    inherit an ignored SIGINT, and ``fleet spawn`` needs it to de-register and print its link counters.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    previous_term = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous_int)
        signal.signal(signal.SIGTERM, previous_term)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _print_table(results: dict[str, Any]) -> None:
    build = results["module"]
    table = Table(
        title=f"Fleet update: {results['devices']} x {results['board']} agents, one "
        f"{build['signed_package_bytes'] / 1000:.1f} KB signed package, single stage"
    )
    for column in (
        "security, link",
        "loss",
        "register s",
        "rollout s",
        "p50 s",
        "p95 s",
        "max s",
        "ok",
        "failed",
        "server RSS MiB",
        "server CPU s",
        "server CPU %",
        "agents CPU %",
        "dropped",
        "buffer drops",
        "datagrams/block",
    ):
        table.add_column(column, justify="right")
    for run in results["scenarios"]:
        per = run["per_device_s"]
        link = run["link"]
        dropped = "—"
        if link["measured_loss"] is not None:
            count = link.get("up_dropped", 0) + link.get("down_dropped", 0)
            dropped = f"{count} ({100 * link['measured_loss']:.1f} %)"
        table.add_row(
            f"{run['security']}, {run.get('link_profile', 'loopback')}",
            f"{100 * run['loss']:g} %",
            _fmt(run["registration_s"])
            if run["registration_s"] is not None
            else f"{run['ready']}/{run['devices']} in {run['waited_s']}",
            _fmt(run["rollout_s"]) + (" (timed out)" if run["timed_out"] else ""),
            _fmt(per["p50"]),
            _fmt(per["p95"]),
            _fmt(per["max"]),
            f"{run['succeeded']}/{run['devices']}",
            str(run["devices"] - run["succeeded"]),
            _fmt(run["server"]["peak_rss_mib"]),
            _fmt(run["server"]["cpu_s"]),
            _fmt(run["server"]["cpu_percent"], 0),
            _fmt(run["fleet_process"]["cpu_percent"], 0),
            dropped,
            "—" if run.get("socket_buffer_drops") is None else str(run["socket_buffer_drops"]["rollout"]),
            _fmt(link.get("datagrams_per_block"), 2),
        )
    table.caption = (
        "rollout: campaign created to last outcome; per device (successes): Package URI written to "
        "outcome recorded; server figures over the rollout; dropped: datagrams lost on the links, both ways; "
        "buffer drops: datagrams the kernel dropped during the rollout because a socket's receive buffer was "
        "full (host-wide); "
        "datagrams/block: all link datagrams of the run over the package blocks installed"
    )
    console.print(table)
    for run in results["scenarios"]:
        for reason, count in run["failure_reasons"].items():
            console.print(
                f"{run['security']}, loss {100 * run['loss']:g} %: {count} x {reason}",
                highlight=False,
                soft_wrap=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=200, help="Emulated devices in the fleet.")
    parser.add_argument("--loss", default="0,0.1", help="Loss probabilities (each way), comma-separated.")
    parser.add_argument("--timeout", type=float, default=900, help="Seconds a rollout may take.")
    parser.add_argument(
        "--security",
        default="dtls",
        help="dtls (provisioned devices, the product's way) and/or nosec (plain CoAP, development), "
        "comma-separated; each runs every --loss figure.",
    )
    parser.add_argument(
        "--register-timeout",
        type=float,
        help="Seconds to wait for every device to be ready (default 60 + 0.3 per device); the "
        "rollout then goes to those that are, and the others count as failures.",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "fleet.json")
    parser.add_argument("--board", default="nano33ble", help="MCU board the agents emulate (TFLM).")
    parser.add_argument(
        "--dataset",
        default="digits",
        help="Built-in dataset of the module; its int8 package must weigh 20-100 KB signed.",
    )
    parser.add_argument("--seed", type=int, default=0, help="Link losses of agent i are drawn from SEED + i.")
    parser.add_argument(
        "--link",
        help="Each agent's emulated link (fleet spawn --link: ble, wifi, lte-m, nb-iot; default loopback); "
        "each --loss figure replaces the profile's own.",
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="OS processes `fleet spawn` splits the agents over (each its own event loop).",
    )
    parser.add_argument(
        "--work-dir",
        type=Path,
        help="Keep the stores, agent states and logs here (default: a temporary directory, removed); "
        "a module built there by an earlier run is reused.",
    )
    args = parser.parse_args()
    if args.devices < 1:
        parser.error("--devices must be at least 1")
    if not 1 <= args.processes <= 64:
        parser.error("--processes must be within 1..64")
    try:
        losses = [float(part) for part in args.loss.split(",")]
    except ValueError:
        parser.error(f"--loss takes probabilities separated by commas, got {args.loss!r}")
    if not all(0.0 <= loss < 1.0 for loss in losses):
        parser.error(f"each --loss lies within 0 (inclusive) and 1 (exclusive), got {args.loss!r}")

    securities = [part.strip() for part in args.security.split(",")]
    if not securities or not set(securities) <= {"dtls", "nosec"}:
        parser.error(f"--security takes dtls and/or nosec, comma-separated, got {args.security!r}")

    procs = Processes()
    with _interruptible(), tempfile.TemporaryDirectory(prefix="tinymlaas-fleet-") as tmp:
        work = args.work_dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        try:
            build = _load_or_build(work, args)
            console.print(
                f"module {build.module}: package {build.package_bytes} bytes, "
                f"signed {build.signed_package_bytes} bytes",
                highlight=False,
            )
            scenarios = [
                _scenario(security, loss, args, build, work, procs)
                for security in securities
                for loss in losses
            ]
        except BenchFailed as exc:
            console.print(f"[red]benchmark failed:[/] {exc}", highlight=False, soft_wrap=True)
            sys.exit(1)
        except KeyboardInterrupt:
            console.print("interrupted; stopping the server and the fleet", highlight=False)
            sys.exit(130)
        finally:
            procs.stop_all()
    results = {
        "devices": args.devices,
        "board": args.board,
        "dataset": args.dataset,
        "module": {k: v for k, v in vars(build).items() if k != "store"},
        "host_cpus": os.cpu_count(),
        "scenarios": scenarios,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    _print_table(results)
    console.print(f"written to {args.out}", highlight=False)


def _load_or_build(work: Path, args: argparse.Namespace) -> Build:
    """Building takes a minute of training; a kept work directory holds the module for later runs."""
    record = work / "module.json"
    store = work / "module-store"
    if record.exists():
        saved = json.loads(record.read_text())
        if saved["dataset"] == args.dataset and saved["board"] == args.board:
            return Build(**{**saved["build"], "store": Path(saved["build"]["store"])})
    if store.exists():
        shutil.rmtree(store)
    build = _build(store, args.dataset, args.board)
    record.write_text(
        json.dumps(
            {"dataset": args.dataset, "board": args.board, "build": {**vars(build), "store": str(store)}}
        )
    )
    return build


if __name__ == "__main__":
    main()
