"""Benchmark what an unauthenticated oversized body costs the server: its RSS growth.

Starts ``tinymlaas serve`` on free ports over a fresh store, then sends ``--mib`` MiB (600 by
default) without a token three ways: a JSON body with its Content-Length, the same body chunked
(no length up front), and a multipart upload to a dataset import with its Content-Length. Bodies are
streamed from a generator, never held in memory here. While each request runs, the server process's
RSS is sampled (psutil when installed, else ``VmRSS`` in ``/proc/<pid>/status``); the growth is the
peak minus the RSS just before. Also recorded: the status, the seconds to the answer and how much of
the body the client was asked for before the server answered. The goal is a growth under 50 MB.

Then a load of ``--concurrency`` (200) requests at once, ``--rounds`` times: with the admin token
the server printed, without one, and with a forged one, against the device list, a dataset list and
a dataset creation with an invalid body. Recorded: the statuses seen and their counts, the seconds per
round (median), and whether any answer was a 5xx or no answer came (the goal: none).

Writes ``bench/results/http_bounds.json`` (or ``--out``) and prints a table.

    python bench/http_bounds.py [--mib 600] [--out PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

RESULTS = Path(__file__).parent / "results"
MIB = 1024 * 1024
GOAL_MB = 50.0
_CHUNK = b"x" * (256 * 1024)


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rss_bytes(pid: int) -> int:
    try:
        import psutil
    except ImportError:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError(f"no VmRSS for process {pid}") from None
    return int(psutil.Process(pid).memory_info().rss)


class _Peak(threading.Thread):
    """Samples a process's RSS every few milliseconds until stopped; keeps the highest."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = _rss_bytes(pid)
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.005):
            self.peak = max(self.peak, _rss_bytes(self.pid))

    def stop(self) -> int:
        self._done.set()
        self.join()
        return self.peak


class _Body:
    """``total`` bytes from a generator, counting what the client pulled."""

    def __init__(self, total: int, head: bytes = b"", tail: bytes = b"") -> None:
        self.total = total
        self.head = head
        self.tail = tail
        self.pulled = 0

    def __iter__(self) -> Iterator[bytes]:
        yield self.head
        left = self.total - len(self.head) - len(self.tail)
        while left > 0:
            chunk = _CHUNK[: min(left, len(_CHUNK))]
            left -= len(chunk)
            self.pulled += len(chunk)
            yield chunk
        yield self.tail


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"tinymlaas serve exited with {process.returncode}:\n{log.read_text()[-3000:]}"
            )
        try:
            if httpx.get(f"{base}/api/v1/boards", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"tinymlaas serve did not answer in {timeout:g} s:\n{log.read_text()[-3000:]}")


def _send(base: str, pid: int, name: str, path: str, body: _Body, headers: dict[str, str]) -> dict[str, Any]:
    before = _rss_bytes(pid)
    sampler = _Peak(pid)
    sampler.start()
    started = time.perf_counter()
    try:
        with httpx.Client(timeout=120) as client:
            response = client.post(f"{base}{path}", content=body, headers=headers)
        status: int | str = response.status_code
    except httpx.TransportError as exc:
        status = f"{type(exc).__name__}"
    elapsed = time.perf_counter() - started
    time.sleep(0.2)  # let the server finish with the connection before the last samples
    peak = sampler.stop()
    return {
        "case": name,
        "path": path,
        "status": status,
        "seconds": round(elapsed, 3),
        "pulled_mb": round(body.pulled / 1e6, 1),
        "rss_before_mb": round(before / 1e6, 1),
        "rss_peak_mb": round(peak / 1e6, 1),
        "growth_mb": round((peak - before) / 1e6, 1),
    }


def _cases(total: int) -> list[tuple[str, str, _Body, dict[str, str]]]:
    json_headers = {"Content-Type": "application/json"}
    boundary = "benchboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    multipart = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(total)}
    return [
        (
            "json, Content-Length",
            "/api/v1/datasets",
            _Body(total),
            {**json_headers, "Content-Length": str(total)},
        ),
        ("json, chunked", "/api/v1/datasets", _Body(total), json_headers),
        ("multipart, Content-Length", "/api/v1/datasets/big/imports", _Body(total, head, tail), multipart),
    ]


_LOAD_REQUESTS = (
    ("GET", "/api/v1/devices", None),
    ("GET", "/api/v1/datasets", None),
    ("POST", "/api/v1/datasets", {"name": "../bad name", "generator": "nothing"}),
)


async def _load_round(base: str, token: str, concurrency: int) -> list[str]:
    auth = ({"Authorization": f"Bearer {token}"}, {}, {"Authorization": "Bearer tmls_forged"})
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:

        async def one(index: int) -> str:
            method, path, body = _LOAD_REQUESTS[index % len(_LOAD_REQUESTS)]
            headers = auth[(index // len(_LOAD_REQUESTS)) % len(auth)]
            try:
                answer = await client.request(method, path, json=body, headers=headers)
            except httpx.TransportError as exc:
                return f"no answer ({type(exc).__name__})"
            return str(answer.status_code)

        return list(await asyncio.gather(*(one(index) for index in range(concurrency))))


def _load(base: str, token: str, concurrency: int, rounds: int) -> dict[str, Any]:
    seconds, statuses = [], Counter[str]()
    for _ in range(rounds):
        started = time.monotonic()
        statuses.update(asyncio.run(_load_round(base, token, concurrency)))
        seconds.append(time.monotonic() - started)
    bad = sum(n for status, n in statuses.items() if status[0] not in "234")
    return {
        "concurrency": concurrency,
        "rounds": rounds,
        "round_s_median": round(statistics.median(seconds), 3),
        "statuses": dict(sorted(statuses.items())),
        "errors_or_5xx": bad,
    }


def _admin_token(log: Path, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"first admin API token[^:]*: (\S+)", log.read_text(errors="replace"))
        if found:
            return found.group(1)
        time.sleep(0.2)
    raise RuntimeError(f"tinymlaas serve printed no admin token:\n{log.read_text()[-3000:]}")


def _print_table(results: dict[str, Any]) -> None:
    table = Table(
        title=f"Unauthenticated {results['mib']} MiB bodies: server RSS (goal: growth < {GOAL_MB:g} MB)"
    )
    for column in ("case", "status", "seconds", "pulled MB", "RSS before MB", "RSS peak MB", "growth MB"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for run in results["runs"]:
        table.add_row(
            run["case"],
            str(run["status"]),
            f"{run['seconds']:.3f}",
            f"{run['pulled_mb']:.1f}",
            f"{run['rss_before_mb']:.1f}",
            f"{run['rss_peak_mb']:.1f}",
            f"{run['growth_mb']:.1f}",
        )
    Console().print(table)
    verdict = "met" if results["max_growth_mb"] < GOAL_MB else "MISSED"
    Console().print(f"largest growth {results['max_growth_mb']:.1f} MB: goal {verdict}")
    load = results["load"]
    Console().print(
        f"{load['rounds']} rounds of {load['concurrency']} requests at once: median "
        f"{load['round_s_median']:.2f} s a round; statuses {load['statuses']}; "
        f"5xx or no answer: {load['errors_or_5xx']}",
        highlight=False,
        soft_wrap=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--mib", type=int, default=600, help="size of each body in MiB")
    parser.add_argument("--concurrency", type=int, default=200, help="requests at once in the load")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of the load")
    parser.add_argument("--out", type=Path, default=RESULTS / "http_bounds.json")
    args = parser.parse_args()

    http_port, coap_port = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
    base = f"http://127.0.0.1:{http_port}"
    with tempfile.TemporaryDirectory(prefix="bench-http-") as tmp:
        log = Path(tmp) / "serve.log"
        env = {**os.environ, "TINYMLAAS_DATA_DIR": str(Path(tmp) / "data"), "PYTHONUNBUFFERED": "1"}
        command = [sys.executable, "-m", "tinymlaas", "serve", "--http-port", str(http_port)]
        with log.open("wb") as out:
            server = subprocess.Popen(
                [*command, "--coaps-port", str(coap_port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        try:
            _wait_ready(base, server, log)
            runs = [_send(base, server.pid, *case) for case in _cases(args.mib * MIB)]
            load = _load(base, _admin_token(log), args.concurrency, args.rounds)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()

    results = {
        "benchmark": "http_bounds",
        "at": datetime.now().astimezone().isoformat(timespec="seconds"),
        "mib": args.mib,
        "goal_growth_mb": GOAL_MB,
        "max_growth_mb": max(run["growth_mb"] for run in runs),
        "runs": runs,
        "load": load,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    _print_table(results)


if __name__ == "__main__":
    main()
