"""Benchmark the device list in the API and the dashboard pages over a fleet of 10,000 devices.

Seeds ``--devices`` (10,000) registered devices straight into a temporary store through the device
repository: 60 s lifetimes, boards, tags and installed models spread over the fleet, one in ten
offline, a registration (and for offline ones a departure) event each, telemetry figures, and one
campaign whose installations partly failed. Then runs the whole app in-process (a TestClient, no
network) with an admin token for the API and a dashboard session for the pages, and times
``--requests`` (50) GETs of each route after one warm-up, the collector paced as ``serve`` paces it
(``tinymlaas.heap``). Recorded per route: the status and the
p50, p95 and p99 seconds. The goal is a p99 under 200 ms on every row.

Writes ``bench/results/device_list.json`` (or ``--out``) and prints a table.

    python bench/device_list.py [--devices 10000] [--requests 50] [--out PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from rich.console import Console
from rich.table import Table

from tinymlaas import heap
from tinymlaas.server.app import create_app
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import CampaignRepository, DeviceRepository
from tinymlaas.storage.tables import CampaignRow, InstallationRow, ModelRow, ModuleRow, VariantRow

RESULTS = Path(__file__).parent / "results"
GOAL_MS = 200.0
BOARDS = ("pico", "esp32s3", "nano33ble", "stm32f746", "rpi4")
TAGS = ("wave-1", "wave-2", "wave-3", "lab", "field")
MODELS = (("kws", "1"), ("kws", "2"), ("wave", "3"), ("anomaly", "1"))
ROUTES = (
    ("api", "/api/v1/devices?limit=100"),
    ("api", "/api/v1/devices?board=pico&limit=100&offset=1500"),
    ("api", "/api/v1/fleet/health"),
    ("page", "/devices"),
    ("page", "/devices?board=pico"),
    ("page", "/"),
)


def _seed(context: Context, devices: int, now: datetime) -> dict[str, int]:
    """``devices`` devices, their events, and a campaign with failed installations; what was written."""
    failed = 0
    with context.session() as session:
        session.add(ModelRow(id="mdl_b", name="kws", version=1, origin="imported", arch="cnn", params=10))
        session.flush()
        session.add(
            VariantRow(
                id="var_b", model_id="mdl_b", quantization="int8", tflite_blob="0" * 64, size_bytes=100,
                info={"ops": [], "layers": [], "inputs": [], "outputs": []}, arena_bytes=1024,
                arena_tries=1, metrics={}, runtime_errors={}, selftests={},
            )
        )  # fmt: skip
        session.flush()
        session.add(
            ModuleRow(
                id="mod_b", variant_id="var_b", board_id="pico", compiler="tflm", runtime="tflm",
                package_blob=None, manifest=None, flash_bytes=None, ram_bytes=None, fits=True, reasons=[],
            )
        )  # fmt: skip
        session.flush()
        repository = DeviceRepository(session)
        installations = []
        for i in range(devices):
            endpoint = f"dev-{i:05d}"
            registered = now - timedelta(seconds=30 + i % 600)
            repository.upsert_registration(
                endpoint, new_id=f"dev_{i:05d}", registration_id=f"r{i}", address="coap://10.0.0.1:5683",
                lifetime=60, lwm2m_version="1.1", objects=["/3/0", "/9/0"], registered_at=registered,
            )  # fmt: skip
            name, version = MODELS[i % len(MODELS)]
            repository.set_reported(
                endpoint,
                board_id=BOARDS[i % len(BOARDS)],
                installed={"name": name, "version": version, "update_result_text": "installed"},
                telemetry={"inference_count": i * 7, "mean_latency_ms": 3.5},
            )
            repository.set_tags(endpoint, [TAGS[i % len(TAGS)], TAGS[(i // 7) % len(TAGS)]])
            repository.record_event(endpoint, "registered", {"registration_id": f"r{i}"}, at=registered)
            if i % 10 == 9:
                repository.mark_offline(endpoint)
                repository.record_event(endpoint, "offline", {"reason": "lifetime expired"}, at=now)
            if i % 20 == 0:
                state = "failed" if i % 100 == 0 else "succeeded"
                failed += state == "failed"
                installations.append(
                    InstallationRow(
                        campaign_id="cmp_b", endpoint=endpoint, state=state, detail={}, update_result=8,
                        started_at=now - timedelta(hours=1), finished_at=now - timedelta(minutes=30),
                        updated_at=now - timedelta(minutes=30),
                    )
                )  # fmt: skip
        CampaignRepository(session).add(
            CampaignRow(
                id="cmp_b", module_id="mod_b", selector="board=pico",
                plan={"stages": [100], "max_failures": 1000, "targets": [i.endpoint for i in installations]},
                state="completed", current_stage=0, created_at=now - timedelta(hours=1), updated_at=now,
            ),
            installations,
        )  # fmt: skip
    return {"devices": devices, "installations": len(installations), "failed": failed}


def _log_in(client: TestClient, token: str) -> None:
    """A dashboard session for ``client``, sending the Origin and CSRF token a browser would."""
    client.headers["Origin"] = "http://testserver"
    response = client.post("/login", data={"token": token, "next": "/"}, follow_redirects=False)
    if response.status_code != 303:
        raise RuntimeError(f"login refused: {response.status_code} {response.text[:200]}")
    match = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").text)
    if match:
        client.headers["X-CSRF-Token"] = match.group(1)


def _percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def _time(client: TestClient, url: str, requests: int, headers: dict[str, str]) -> dict[str, Any]:
    statuses = {client.get(url, headers=headers).status_code}  # warm-up, not counted
    seconds = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        seconds.append(time.perf_counter() - started)
        statuses.add(response.status_code)
    return {
        "url": url,
        "statuses": sorted(statuses),
        "bytes": len(response.content),
        "p50_ms": statistics.median(seconds) * 1000,
        "p95_ms": _percentile(seconds, 0.95) * 1000,
        "p99_ms": _percentile(seconds, 0.99) * 1000,
    }


def _print_table(results: dict[str, Any]) -> None:
    table = Table(
        title=f"{results['seeded']['devices']:,} devices, {results['requests']} requests per route "
        f"(goal: p99 < {GOAL_MS:g} ms)"
    )
    for column in ("route", "status", "KiB", "p50 ms", "p95 ms", "p99 ms", "goal"):
        table.add_column(column, justify="left" if column == "route" else "right")
    for row in results["routes"]:
        table.add_row(
            row["url"],
            ",".join(str(status) for status in row["statuses"]),
            f"{row['bytes'] / 1024:.0f}",
            f"{row['p50_ms']:.1f}",
            f"{row['p95_ms']:.1f}",
            f"{row['p99_ms']:.1f}",
            "met" if row["p99_ms"] < GOAL_MS else "MISSED",
        )
    Console().print(table)
    Console().print(f"seeding took {results['seed_s']:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--out", type=Path, default=RESULTS / "device_list.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tinymlaas-bench-") as store:
        context = Context(Settings(data_dir=Path(store) / "data"))
        started = time.perf_counter()
        seeded = _seed(context, args.devices, datetime.now(UTC))
        seed_s = time.perf_counter() - started
        admin = create_token(context, Role.ADMIN, "bench")[1]
        api = {"Authorization": f"Bearer {admin}"}
        with TestClient(create_app(context)) as client:
            _log_in(client, admin)
            heap.settle()  # as ``serve`` does once it listens
            routes = [_time(client, url, args.requests, api if kind == "api" else {}) for kind, url in ROUTES]
    results = {
        "at": datetime.now(UTC).isoformat(),
        "seeded": seeded,
        "seed_s": seed_s,
        "requests": args.requests,
        "goal_p99_ms": GOAL_MS,
        "routes": routes,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    _print_table(results)


if __name__ == "__main__":
    main()
