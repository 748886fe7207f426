"""Two ``tinymlaas serve`` processes on one store: the campaign lease's holder drives, the other stands by,
and when the holder is killed mid-campaign the devices fail over and the campaign still completes.

The servers share a data directory (one signing key) and a store (SQLite or PostgreSQL); the devices
are real agents on DTLS, each behind an emulated link slow enough that the kill lands mid-download.
"""

from __future__ import annotations

import asyncio
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

from tinymlaas.agent import AgentEvent
from tinymlaas.agent.client import MAX_SERVERS, server_uris
from tinymlaas.agent.fleet import spawn_fleet
from tinymlaas.catalog import load_catalog
from tinymlaas.compilers.base import VariantArtifact
from tinymlaas.compilers.tflm import TflmCompiler
from tinymlaas.deploy.signing import load_or_create_signing_key
from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.linkemu import LinkProfile
from tinymlaas.server.campaigns import LEASE_NAME
from tinymlaas.services.campaigns import create_campaign, show_campaign
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import show_device
from tinymlaas.services.provisioning import provision_device
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import LeaseRepository, ModelRepository
from tinymlaas.storage.tables import ModelRow, ModuleRow, VariantRow

BOARD = "nano33ble"
DEVICES = 3
LEASE_S = 2.0
# Slow enough that a package of a few kilobytes takes seconds to arrive, so the holder can be killed
# while devices download; no loss, so what the test shows is the failover and nothing else.
SLOW_LINK = LinkProfile("slow", latency_ms=60, jitter_ms=0, bandwidth_bps=48_000, loss=0.0, duplicate=0.0)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def announced(process: subprocess.Popen[bytes], timeout: float) -> dict[str, str | None]:
    """The JSON line ``serve --json`` prints once it listens; fails at the deadline or if it exits."""
    deadline = time.monotonic() + timeout
    seen = b""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"coap_uri" not in seen or not seen.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                pytest.fail(f"serve announced nothing within {timeout} s: {seen!r}")
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                pytest.fail(f"serve exited ({process.wait(5)}) before it listened")
            seen += chunk
    return json.loads(seen.decode().strip().splitlines()[-1])


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    coap_uri: str
    http_url: str
    admin_token: str | None


@contextmanager
def serving(data_dir: Path, database_url: str) -> Iterator[Callable[[], Server]]:
    """Starts ``serve`` processes on the store, each in a session of its own so a kill takes its
    job workers too, its stderr in ``data_dir/serve-N.log``; whatever still runs at the end is stopped."""
    started: list[subprocess.Popen[bytes]] = []
    env = {
        **os.environ,
        "TINYMLAAS_DATA_DIR": str(data_dir),
        "TINYMLAAS_DATABASE_URL": database_url,
        "TINYMLAAS_CAMPAIGN_LEASE_S": str(LEASE_S),
        "TINYMLAAS_JOB_WORKERS": "1",
    }

    def start() -> Server:
        port = free_udp_port()
        log = (data_dir / f"serve-{len(started)}.log").open("wb")
        command = [sys.executable, "-m", "tinymlaas", "serve", "--coaps-port", str(port)]
        process = subprocess.Popen(
            [*command, "--http-port", "0", "--json"],
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            start_new_session=True,
        )
        log.close()  # the child holds its own copy
        started.append(process)
        said = announced(process, 60)
        return Server(process, str(said["coap_uri"]), str(said["http_url"]), said["admin_token"])

    try:
        yield start
    finally:
        for process in started:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in started:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _module(context: Context) -> str:
    """A tiny int8 CNN compiled for the board, stored as a module ready to deploy; its id."""
    import keras

    from tinymlaas.squeeze.convert import Quantization, convert
    from tinymlaas.squeeze.variants import assess

    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((32, 3)),
            keras.layers.Conv1D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    representative = np.random.default_rng(7).normal(size=(64, 32, 3)).astype(np.float32)
    tflite = convert(model, Quantization.INT8, representative)
    squeezed = assess(tflite, None, max_arena_bytes=64 * 1024)
    variant = VariantArtifact(
        variant_id="var_failover",
        model_id="mdl_failover",
        model_name="failover cnn",
        model_version=1,
        quantization=squeezed.quantization,
        tflite=tflite,
        info=squeezed.info,
        arena_bytes=squeezed.arena.arena_bytes,
        selftests=squeezed.selftests,
    )
    board = load_catalog().board(BOARD)
    built = TflmCompiler().compile(
        variant, board, flash_bytes=len(tflite), ram_bytes=variant.arena_bytes or 0
    )
    with context.session() as session:
        repository = ModelRepository(session)
        repository.add(
            ModelRow(
                id="mdl_failover", name="failover cnn", version=1, origin="imported", arch="cnn", params=0
            )
        )
        repository.add(
            VariantRow(
                id="var_failover", model_id="mdl_failover", quantization="int8",
                tflite_blob=context.blobs.put(tflite), size_bytes=len(tflite), info={}, arena_bytes=None,
                arena_tries=0, metrics={}, runtime_errors={}, selftests={},
            )
        )  # fmt: skip
        repository.add(
            ModuleRow(
                id="mod_failover", variant_id="var_failover", board_id=BOARD, compiler="tflm",
                runtime="tflm", package_blob=context.blobs.put(built.to_zip()),
                manifest=dict(built.manifest), fits=True, reasons=[],
            )
        )  # fmt: skip
    return "mod_failover"


def _lease_holder(context: Context) -> str | None:
    with context.session() as session:
        return LeaseRepository(session).holder(LEASE_NAME)


async def _until(check: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"{what} within {timeout} s"
        await asyncio.sleep(0.1)


def test_the_standby_takes_the_lease_when_the_holder_dies_and_the_campaign_completes(store, tmp_path) -> None:
    data_dir = tmp_path / "data"
    context = Context(Settings(data_dir=data_dir, database_url=store))
    public_key = load_or_create_signing_key(context.settings.keys_dir).public_key_bytes()
    module = _module(context)
    fleet_dir = tmp_path / "fleet"
    endpoints = [f"fo-{index:03d}" for index in range(DEVICES)]
    for endpoint in endpoints:
        provision_device(context, endpoint, BOARD, state_dir=fleet_dir / endpoint)
    board = load_catalog().board(BOARD)
    events: list[tuple[str, str, str]] = []

    def record(endpoint: str, event: AgentEvent) -> None:
        events.append((endpoint, event.kind, event.message))

    with serving(data_dir, store) as start:
        a = start()
        # The first server takes the lease on its first pass; the second, started after, stands by.
        deadline = time.monotonic() + 15
        while (holder_a := _lease_holder(context)) is None:
            assert time.monotonic() < deadline, "the first server never took the campaign lease"
            time.sleep(0.1)
        b = start()
        admin = {"Authorization": f"Bearer {a.admin_token}"}

        async def scenario() -> None:
            fleet = await spawn_fleet(
                DEVICES,
                board,
                [a.coap_uri, b.coap_uri],
                fleet_dir,
                public_key,
                prefix="fo",
                link=SLOW_LINK,
                lifetime=4,
                request_timeout=2.0,
                on_event=record,
            )
            try:
                await _until(
                    lambda: all(
                        show_device(context, e).capabilities.get("runtime") == "tflm" for e in endpoints
                    ),
                    20,
                    "every device registered with the first server and reported its runtime",
                )
                # Registered with A, online through B's API: the device table is the servers' shared view.
                async with httpx.AsyncClient(base_url=b.http_url, headers=admin) as client:
                    listed = (await client.get("/api/v1/devices")).json()["data"]
                assert {d["endpoint"] for d in listed if d["online"]} == set(endpoints)

                campaign = await asyncio.to_thread(create_campaign, context, module, f"board:{BOARD}")
                await _until(
                    lambda: any(agent.download.offset > 0 for agent in fleet.agents.values()),
                    20,
                    "a device started downloading from the lease holder",
                )
                assert _lease_holder(context) == holder_a
                os.killpg(a.process.pid, signal.SIGKILL)
                a.process.wait(10)
                killed_at = time.monotonic()
                mid_download = [e for e, agent in fleet.agents.items() if agent.download.uri is not None]
                assert mid_download, "every device had finished downloading before the kill"

                await _until(
                    lambda: _lease_holder(context) not in (None, holder_a),
                    LEASE_S + 10,
                    "the standby took the campaign lease over",
                )
                taken_after = time.monotonic() - killed_at
                await _until(
                    lambda: show_campaign(context, campaign.id).state == "completed",
                    45,
                    "the campaign completed on the standby",
                )
                completed_after = time.monotonic() - killed_at
                print(
                    f"lease taken over {taken_after:.1f} s after the kill, campaign completed after "
                    f"{completed_after:.1f} s; {len(mid_download)} devices were mid-download"
                )
                for endpoint, agent in fleet.agents.items():
                    assert agent.server_uri.endswith(f":{fleet.relays[endpoint][1].port}"), endpoint
                    assert agent.slots.active().manifest["model"]["name"] == "failover cnn"
            finally:
                await fleet.stop()

            done = show_campaign(context, campaign.id)
            assert [(i.endpoint, i.state, i.update_result_text) for i in done.installations] == [
                (endpoint, "succeeded", "installed") for endpoint in endpoints
            ]
            assert all(i.finished_at for i in done.installations)
            failed_over = {endpoint for endpoint, kind, _ in events if kind == "failed-over"}
            assert failed_over == set(endpoints)
            assert not [event for event in events if event[1] == "install-failed"]
            for endpoint in mid_download:
                # The download cut off by the kill went on from the standby, and the install followed.
                kinds = [kind for e, kind, _ in events if e == endpoint]
                after = kinds[kinds.index("failed-over") :]
                assert "download" in after and after.index("download") < after.index("installed"), kinds

        asyncio.run(asyncio.wait_for(scenario(), 90))
        holder_b = _lease_holder(context)
        b.process.send_signal(signal.SIGTERM)
        assert b.process.wait(timeout=20) == 0
    assert holder_b not in (None, holder_a)
    assert _lease_holder(context) is None  # released on a clean stop, for the next standby to take at once


def test_an_agent_takes_one_to_sixteen_distinct_coap_servers() -> None:
    assert server_uris("coaps://127.0.0.1:5684/") == ("coaps://127.0.0.1:5684",)
    assert server_uris(["coaps://a:1", "coaps://b:1"]) == ("coaps://a:1", "coaps://b:1")
    with pytest.raises(InvalidInput, match="1 to 16"):
        server_uris([])
    with pytest.raises(InvalidInput, match="1 to 16"):
        server_uris([f"coaps://h:{port}" for port in range(1, MAX_SERVERS + 2)])
    with pytest.raises(InvalidInput, match="one server twice"):
        server_uris(["coaps://a:1", "coaps://a:1/"])
    with pytest.raises(InvalidInput, match="not coap"):
        server_uris(["coaps://a:1", "http://b"])
