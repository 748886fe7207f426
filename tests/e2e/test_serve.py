"""``tinymlaas serve`` as a user runs it, with libcoap's client as an independent LwM2M device."""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

COAPS_CLIENT = (
    shutil.which("coap-client-openssl") or "coap-client-openssl (run make setup: Debian libcoap3-bin)"
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def output_until(process: subprocess.Popen[bytes], text: str, timeout: float) -> str:
    """Everything ``process`` printed up to a line holding ``text``; fails at the deadline or if it exits.

    Reads the raw pipe (no line buffering of its own), so a line already printed is never missed.
    """
    deadline = time.monotonic() + timeout
    seen = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while text.encode() not in seen or not seen.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                pytest.fail(f"serve printed no line with {text!r} within {timeout} s: {seen!r}")
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                pytest.fail(f"serve exited ({process.wait(5)}): {process.stderr.read()[-2000:]!r}")
            seen += chunk
    return seen.decode()


def test_serve_registers_a_provisioned_libcoap_device_over_dtls_and_stops_cleanly(cli) -> None:
    port = free_udp_port()
    env = {**os.environ, "TINYMLAAS_DATA_DIR": str(cli.data_dir)}
    made = cli.json("devices", "provision", "libcoap-dev", "--board", "pico")
    server = subprocess.Popen(
        [sys.executable, "-m", "tinymlaas", "serve", "--coaps-port", str(port), "--http-port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        printed = output_until(server, "public key", 30)
        assert f"coaps://127.0.0.1:{port}" in printed
        key_file = Path(printed.split("public key: ", 1)[1].splitlines()[0])
        assert key_file.parent == cli.data_dir / "keys"
        assert len(bytes.fromhex(key_file.read_text())) == 32

        registered = subprocess.run(
            [
                COAPS_CLIENT, "-B", "5", "-m", "post", "-t", "40", "-e", "</3/0>",
                "-u", made["psk_identity"], "-k", made["psk_key"],
                f"coaps://127.0.0.1:{port}/rd?ep=libcoap-dev&lt=60&lwm2m=1.1",
            ],
            capture_output=True, text=True, timeout=15, check=True,
        )  # fmt: skip
        assert "4." not in registered.stdout + registered.stderr  # the client exits 0 even on errors

        deadline = time.monotonic() + 15
        while True:
            devices = cli.json("devices", "list")
            found = [device for device in devices if device["endpoint"] == "libcoap-dev"]
            if found and found[0]["online"]:
                break
            assert time.monotonic() < deadline, f"libcoap-dev never appeared online: {devices}"
            time.sleep(0.2)
        shown = json.loads(cli("devices", "show", "libcoap-dev", "--json").stdout)
        assert shown["objects"] == ["/3/0"]
        assert shown["events"][-1]["kind"] == "registered"

        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0, server.stderr.read()[-2000:].decode()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert cli.json("devices", "list")[0]["online"] is False
    assert "libcoap-dev" not in cli("devices", "show", "nobody", ok=False).stdout
    assert "known: libcoap-dev" in cli("devices", "show", "nobody", ok=False).stderr


def test_serve_json_prints_where_it_listens_and_its_key(cli) -> None:
    port = free_udp_port()
    env = {**os.environ, "TINYMLAAS_DATA_DIR": str(cli.data_dir)}
    server = subprocess.Popen(
        [sys.executable, "-m", "tinymlaas", "serve", "--coaps-port", str(port), "--http-port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        started = json.loads(output_until(server, "coap_uri", 30))
        http_url = started.pop("http_url")
        admin_token = started.pop("admin_token")
        assert started.pop("server_id").startswith("srv_")
        assert started == {
            "coap_uri": f"coaps://127.0.0.1:{port}",
            "nosec_uri": None,
            "public_key": str(cli.data_dir / "keys" / "server_ed25519.pub"),
        }
        assert http_url.startswith("http://127.0.0.1:")
        assert admin_token.startswith("tmls_")
        bearer = {"Authorization": f"Bearer {admin_token}"}
        assert httpx.get(f"{http_url}/api/v1/devices", headers=bearer).json() == {"data": [], "count": 0}
        assert httpx.get(f"{http_url}/api/v1/devices").status_code == 401
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_plain_coap_opens_only_in_development_and_says_so(cli) -> None:
    port, nosec = free_udp_port(), free_udp_port()
    env = {**os.environ, "TINYMLAAS_DATA_DIR": str(cli.data_dir), "TINYMLAAS_ALLOW_NOSEC": "1"}
    command = [
        sys.executable,
        "-m",
        "tinymlaas",
        "serve",
        "--coaps-port",
        str(port),
        "--coap-port",
        str(nosec),
    ]
    server = subprocess.Popen(
        [*command, "--no-http", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        started = json.loads(output_until(server, "coap_uri", 30))
        assert started["nosec_uri"] == f"coap://127.0.0.1:{nosec}"
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=20) == 0
        assert "WARNING: plain CoAP (NoSec) is open" in server.stderr.read().decode()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_an_agent_prints_json_events_and_deregisters_on_sigterm(cli, tmp_path) -> None:
    port = free_udp_port()
    env = {**os.environ, "TINYMLAAS_DATA_DIR": str(cli.data_dir)}
    cli("devices", "provision", "pico-json", "--board", "pico", "--state-dir", str(tmp_path / "pico"))
    server = subprocess.Popen(
        [sys.executable, "-m", "tinymlaas", "serve", "--coaps-port", str(port), "--http-port", "0", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    agent = None
    try:
        key = json.loads(output_until(server, "coap_uri", 30))["public_key"]
        agent = subprocess.Popen(
            [
                sys.executable, "-m", "tinymlaas", "agent", "--board", "pico", "--endpoint", "pico-json",
                "--server", f"coaps://127.0.0.1:{port}", "--state-dir", str(tmp_path / "pico"),
                "--public-key", key, "--sensor", "none", "--json",
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        lines = output_until(agent, '"registered"', 30).splitlines()
        events = [json.loads(line) for line in lines]
        assert events[-1]["kind"] == "registered"
        assert all({"at", "kind", "message"} <= set(event) for event in events)

        agent.send_signal(signal.SIGTERM)
        assert agent.wait(timeout=20) == 0, agent.stderr.read()[-2000:].decode()
        assert json.loads(agent.stdout.read().splitlines()[-1])["kind"] == "deregistered"
        device = cli.json("devices", "show", "pico-json")
        assert device["online"] is False
        # The server's first reads of a device that leaves at once may fail after it left: not "newest".
        assert "deregistered" in [event["kind"] for event in device["events"]]
    finally:
        for process in (agent, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def test_fleet_spawn_in_the_background_stops_on_sigint_and_says_each_thing_once(cli, tmp_path) -> None:
    port = free_udp_port()
    env = {**os.environ, "TINYMLAAS_DATA_DIR": str(cli.data_dir)}
    server = subprocess.Popen(
        [sys.executable, "-m", "tinymlaas", "serve", "--coaps-port", str(port), "--no-http", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    fleet = None
    try:
        key = json.loads(output_until(server, "coap_uri", 30))["public_key"]
        fleet = subprocess.Popen(
            [
                sys.executable, "-m", "tinymlaas", "fleet", "spawn", "--count", "1", "--board", "pico",
                "--server", f"coaps://127.0.0.1:{port}", "--state-dir", str(tmp_path / "fleet"),
                "--public-key", key,
            ],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            # What a shell does to a job started with '&': SIGINT ignored.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
        )  # fmt: skip
        printed = output_until(fleet, "registered", 30)
        assert f"pico-000 registered at coaps://127.0.0.1:{port}/rd/" in printed
        assert "registered registered" not in printed
        fleet.send_signal(signal.SIGINT)
        assert fleet.wait(timeout=20) == 0, fleet.stderr.read()[-2000:].decode()
        assert "fleet stopped" in fleet.stderr.read().decode()
        assert cli.json("devices", "show", "pico-000")["online"] is False  # it de-registered
    finally:
        for process in (fleet, server):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()
