"""A real ``tinymlaas serve`` with its job workers, real emulated devices, and Debian's Chromium.

Chromium is the system package (``make setup`` installs it); Playwright drives it through its
``executable_path``, so no browser is downloaded. Screenshots go to ``test-output/browser/`` at the
repository root, one per page visited, named in the order the journey takes them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tinymlaas.deploy.signing import PUBLIC_KEY_NAME, load_or_create_signing_key

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "test-output" / "browser"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass(frozen=True)
class Server:
    url: str  # the dashboard, e.g. http://127.0.0.1:43121
    coap_uri: str
    public_key: Path
    admin_token: str
    data_dir: Path
    env: dict[str, str]


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("browser") / "data"
    env = {**os.environ, "TINYMLAAS_DATA_DIR": str(data_dir)}
    command = [sys.executable, "-m", "tinymlaas", "serve", "--json", "--http-port", "0"]
    process = subprocess.Popen(
        [*command, "--coaps-port", str(_free_udp_port())],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        line = process.stdout.readline()
        assert line, f"serve exited with {process.wait(10)} before it listened"
        started = json.loads(line)
        yield Server(
            url=started["http_url"],
            coap_uri=started["coap_uri"],
            public_key=Path(started["public_key"]),
            admin_token=started["admin_token"],
            data_dir=data_dir,
            env=env,
        )
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def fleet(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """Two emulated nano33ble boards on the TFLM runtime, streaming gestures, registered with the server."""
    state_dir = tmp_path_factory.mktemp("devices")
    process = subprocess.Popen(
        [
            sys.executable, "-m", "tinymlaas", "fleet", "spawn", "--count", "2", "--board", "nano33ble",
            "--server", server.coap_uri, "--state-dir", str(state_dir),
            "--public-key", str(server.public_key), "--prefix", "journey",
            "--sensor", "gestures", "--rate", "2",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=server.env, text=True,
    )  # fmt: skip
    try:
        yield [f"journey-{i:03d}" for i in range(2)]
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def stale_key_device(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A third nano33ble that trusts another server's package key, as a board flashed for a different
    install would: it registers and passes the compatibility gate like the others, then refuses every
    package this server signs when it checks the signature, and reports that as its Update Result."""
    keys_dir = tmp_path_factory.mktemp("other-server-keys")
    load_or_create_signing_key(keys_dir)
    process = subprocess.Popen(
        [
            sys.executable, "-m", "tinymlaas", "fleet", "spawn", "--count", "1", "--board", "nano33ble",
            "--server", server.coap_uri, "--state-dir", str(tmp_path_factory.mktemp("stale-key")),
            "--public-key", str(keys_dir / PUBLIC_KEY_NAME), "--prefix", "stale-key",
        ],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=server.env, text=True,
    )  # fmt: skip
    try:
        yield "stale-key-000"
    finally:
        _stop(process)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert CHROMIUM, "no chromium on PATH: run make setup (it installs Debian's chromium)"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


class Shots:
    """Numbered full-page screenshots, so the folder reads as the journey in order."""

    def __init__(self, folder: Path) -> None:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        self.folder = folder
        self.taken: list[Path] = []

    def __call__(self, page: Page, name: str) -> Path:
        path = self.folder / f"{len(self.taken) + 1:02d}-{name}.png"
        page.screenshot(path=path, full_page=True)
        self.taken.append(path)
        return path


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    return Shots(SCREENSHOTS / request.node.name)
