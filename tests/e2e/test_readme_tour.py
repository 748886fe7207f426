"""The README's CLI tour, read from the README itself and typed as written into a fresh directory.

The commands are the ``tinymlaas`` lines of the shell blocks under the tour's headings (the tour and
its fleet part), so editing the README is what changes this test. Each runs with the virtual
environment's ``bin`` first on PATH (what ``. .venv/bin/activate`` does), in an empty directory, with
no ``TINYMLAAS_*`` variable but the server's ports and a temporary HOME, so the CLI picks its own
default store (``~/.local/share/tinymlaas``, the directory having no ``.data``) and nothing real is
touched. A command must exit 0 and print what the README says it shows.

What a reader fills in is filled in the same few ways, and nothing else is changed:

- a trailing ``# comment`` is dropped and backslash continuations are joined (shell rules);
- ``[optional parts]`` are left out, and a line with ``...`` (short for the command above) is skipped;
- ``var_XXXX`` and ``mod_XXXX`` become the id the tour printed last: the int8 variant (the one TFLM
  runs on a pico) and the module compiled for the pico;
- an input the tour names but does not make (``./my-boards``, ``./leaves/``, ``wine.csv``,
  ``data.npz``, ``model.tflite``) is made, small, before its command: ``model.tflite`` is the model
  in the ``module.zip`` the tour's ``compile`` wrote;
- ``serve`` listens on free ports chosen through ``TINYMLAAS_COAPS_PORT`` and
  ``TINYMLAAS_HTTP_PORT`` rather than 5684 and 8000, which another server may hold, and the tour's
  ``coaps://127.0.0.1:5684`` names that port.

``serve``, ``agent`` and ``fleet spawn`` run until Ctrl-C: each starts in the background, counts as
done once it printed that it is ready (a device once the server stored its report, as the next
command lists it), and is stopped with SIGINT at the end, which it must answer by exiting 0.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tinymlaas.errors import NotFound
from tinymlaas.services.context import Context
from tinymlaas.services.fleet import show_device
from tinymlaas.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"
TOUR_HEADINGS = ("A tour of the CLI", "The fleet")
BIN = Path(sys.executable).parent  # the virtual environment running the tests
TOUR_PORT = "127.0.0.1:5684"
COMMAND_TIMEOUT_S = 300
READY_TIMEOUT_S = 90


def tour_commands(markdown: str) -> list[str]:
    """The ``tinymlaas`` commands of the shell blocks under the tour's headings, continuations joined."""
    commands: list[str] = []
    in_tour = in_block = False
    pending = ""
    for line in markdown.splitlines():
        if line.startswith("```"):
            in_block = not in_block
            continue
        if not in_block:
            if line.startswith("#"):
                in_tour = line.lstrip("#").strip().startswith(TOUR_HEADINGS)
            continue
        if not in_tour:
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words = shlex.split(pending + line, comments=True)
        pending = ""
        if words and words[0] == "tinymlaas":
            commands.append(" ".join(words))
    return commands


def without_optional_parts(command: str) -> str:
    return " ".join(re.sub(r"\[[^\]]*\]", " ", command).split())


@dataclass
class Expected:
    """What the README says a command shows, as patterns its output must hold."""

    command: str
    shows: tuple[str, ...]
    files: tuple[str, ...] = ()


# Matched against the command as run, first match wins; a tour command without an entry fails, so a
# command added to the README gets its promise written down here too.
EXPECTED = (
    Expected(r"--boards-dir \./my-boards boards list", ("pico-tour", "nano33ble")),
    Expected(r"boards list", ("flash", "RAM", "runtimes", "nano33ble", "pico", "rpi4")),
    Expected(r"boards show nano33ble", ("Arduino Nano 33 BLE Sense", "nRF52840 Product Specification")),
    Expected(
        r"datasets create gestures --generator gestures", (r"created dataset gestures with \d+ samples",)
    ),
    Expected(r"datasets import plants", (r"imported 6 samples into plants",)),
    Expected(r"datasets import wine", (r"imported 8 samples into wine",)),
    Expected(r"datasets import mine", (r"imported 8 samples into mine",)),
    Expected(r"datasets show gestures", ("classification", r"\(64, 3\)", "circle", "wave")),
    Expected(r"datasets snapshot gestures", (r"snapshot [0-9a-f]{64}",)),
    Expected(r"train --dataset gestures", (r"model mdl_\w+ \(gestures v1, cnn1d", "accuracy")),
    Expected(r"squeeze gestures", ("float32", "float16", "int8", "TFLM", "LiteRT")),
    Expected(r"models show gestures", ("size", "arena", "params", "MACs", "metric", "int8")),
    Expected(r"compile var_\w+ --board pico --out module\.zip", (r"mod_\w+", "pico", "yes"), ("module.zip",)),
    Expected(
        r"compile var_\w+ --board nano33ble --compiler native",
        (r"mod_\w+", "native", "Instructions", "mps2-an386", "linker", "bit-exact"),
    ),
    Expected(r"models import model\.tflite --dataset gestures", (r"var_\w+", "int8", "accuracy")),
    Expected(
        r"lifecycle run --dataset gestures --boards nano33ble,pico,rpi4",
        ("nano33ble", "pico", "rpi4", "fits", "flash", "arena", "timings"),
    ),
    Expected(
        r"split gestures --chain nano33ble:ble:rpi4 --json",
        (
            '"candidates"',
            '"chosen"',
            '"transfer"',
            "counted in QEMU mps2-an386",
            "LiteRT on the emulating host",
        ),
    ),
    Expected(
        r"^tinymlaas serve$",
        (r"LwM2M server listening on coaps://127\.0\.0\.1:\d+", r"signing public key: \S+"),
    ),
    Expected(r"devices provision pico-1", ("pico-1 provisioned",), ("pico-1/security.json",)),
    Expected(r"agent --board pico --endpoint pico-1", (r"registered at coaps://",)),
    Expected(r"devices list", ("pico-1", "pico", "tflm")),
    Expected(r"devices show pico-1", ("pico-1", "tflm", "registered", "reported")),
    Expected(r"devices health", (r"1 devices: 1 online", "silent", "inferences", "alerts")),
    Expected(r"deploy mod_\w+ --to board:pico", (r"campaign cmp_\w+", "pico-1")),
    Expected(r"campaigns list", (r"cmp_\w+", "board:pico")),
    Expected(r"fleet spawn --count 6 --board pico", tuple(rf"pico-00{i} registered at" for i in range(6))),
)


def expected(command: str) -> Expected:
    for entry in EXPECTED:
        if re.search(entry.command, command):
            return entry
    raise AssertionError(f"the README's tour runs {command!r}: write down what it shows in EXPECTED")


def make_boards(cwd: Path) -> None:
    """A board file of one's own: the built-in pico under another id."""
    builtin = (Path(__file__).resolve().parents[2] / "src/tinymlaas/catalog/boards/pico.toml").read_text()
    (cwd / "my-boards").mkdir()
    (cwd / "my-boards" / "pico-tour.toml").write_text(re.sub(r'(?m)^id = ".*"$', 'id = "pico-tour"', builtin))


def make_leaves(cwd: Path) -> None:
    """A folder of class subfolders, three small PNG leaves each."""
    rng = np.random.default_rng(0)
    for label in ("healthy", "blight"):
        folder = cwd / "leaves" / label
        folder.mkdir(parents=True)
        for index in range(3):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{index}.png")


def make_wine(cwd: Path) -> None:
    rows = io.StringIO()
    writer = csv.writer(rows)
    writer.writerow(["alcohol", "acidity", "quality"])
    writer.writerows([9.0 + index / 4, 3.0 + index / 20, 5 + index % 2] for index in range(8))
    (cwd / "wine.csv").write_text(rows.getvalue())


def make_npz(cwd: Path) -> None:
    rng = np.random.default_rng(1)
    np.savez(cwd / "data.npz", x=rng.normal(size=(8, 4)).astype(np.float32), y=np.arange(8) % 2)


def make_tflite(cwd: Path) -> None:
    """The model of the module the tour compiled: a .tflite brought back in from elsewhere."""
    (cwd / "model.tflite").write_bytes(zipfile.ZipFile(cwd / "module.zip").read("model.tflite"))


INPUTS: dict[str, Callable[[Path], None]] = {
    "./my-boards": make_boards,
    "./leaves/": make_leaves,
    "wine.csv": make_wine,
    "data.npz": make_npz,
    "model.tflite": make_tflite,
}


class Background:
    """A command that runs until Ctrl-C; its output (stdout and stderr) gathered as it comes."""

    def __init__(self, words: list[str], cwd: Path, env: dict[str, str]) -> None:
        self.command = shlex.join(words)
        self.process = subprocess.Popen(
            words, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self._lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self._lines)

    def wait_for(self, patterns: tuple[str, ...], timeout: float = READY_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout
        while not all(re.search(pattern, self.output) for pattern in patterns):
            if self.process.poll() is not None:
                self._reader.join(5)
                pytest.fail(f"{self.command} exited ({self.process.returncode}):\n{self.output[-3000:]}")
            if time.monotonic() > deadline:
                pytest.fail(
                    f"{self.command} printed no {patterns} within {timeout} s:\n{self.output[-3000:]}"
                )
            time.sleep(0.1)
        return self.output

    def interrupt(self) -> int:
        """Ctrl-C, as a person stops it; the exit status."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=30)
        finally:
            self._reader.join(5)


def free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Tour:
    """The reader's shell: a directory, an environment and everything printed so far."""

    cwd: Path
    env: dict[str, str]
    store: Path
    coaps_port: int
    printed: list[str] = field(default_factory=list)
    running: list[Background] = field(default_factory=list)

    def resolve(self, command: str) -> list[str]:
        command = without_optional_parts(command).replace(TOUR_PORT, f"127.0.0.1:{self.coaps_port}")
        command = re.sub(r"\bvar_XXXX\b", lambda _: self.last_id("var", "int8"), command)
        command = re.sub(r"\bmod_XXXX\b", lambda _: self.last_id("mod", "pico"), command)
        words = shlex.split(command)
        for name, make in INPUTS.items():
            if name in words and not (self.cwd / name).exists():
                make(self.cwd)
        return words

    def last_id(self, prefix: str, row: str) -> str:
        """The ``prefix_`` id on the last printed line that mentions ``row``."""
        for line in reversed("".join(self.printed).splitlines()):
            found = re.search(rf"\b{prefix}_[0-9a-f]+\b", line)
            if found and row in line:
                return found.group()
        raise AssertionError(f"no {prefix}_ id printed before a command that needs one")

    def run(self, command: str) -> None:
        words = self.resolve(command)
        if "..." in words:
            return
        want = expected(shlex.join(words))
        if words[1:2] in (["serve"], ["agent"]) or words[1:3] == ["fleet", "spawn"]:
            output = self.start(words, want)
        else:
            done = subprocess.run(
                words, cwd=self.cwd, env=self.env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S
            )
            output = done.stdout + done.stderr
            assert done.returncode == 0, f"{shlex.join(words)} exited {done.returncode}:\n{output[-3000:]}"
        self.printed.append(output)
        for pattern in want.shows:
            assert re.search(pattern, output), (
                f"{shlex.join(words)} did not show {pattern!r}:\n{output[-3000:]}"
            )
        for name in want.files:
            assert (self.cwd / name).is_file(), f"{shlex.join(words)} did not write {name}"

    def start(self, words: list[str], want: Expected) -> str:
        process = Background(words, self.cwd, self.env)
        self.running.append(process)
        output = process.wait_for(want.shows)
        if words[1] == "agent":
            endpoint = words[words.index("--endpoint") + 1]
            self.wait_reported(endpoint)
        return output

    def wait_reported(self, endpoint: str) -> None:
        """Until the server stored what ``endpoint`` reported in its registration: a device is listed then."""
        context = Context(Settings(data_dir=self.store))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                if show_device(context, endpoint).telemetry:
                    return
            except NotFound:
                pass
            assert time.monotonic() < deadline, f"{endpoint} registered but the server stored no report"
            time.sleep(0.2)

    def stop(self) -> dict[str, int]:
        """Ctrl-C to what still runs, newest first (devices before their server); each exit status."""
        return {process.command: process.interrupt() for process in reversed(self.running)}


@pytest.fixture
def tour(tmp_path: Path) -> Iterator[Tour]:
    cwd = tmp_path / "tour"
    cwd.mkdir()
    home = tmp_path / "home"
    coaps_port = free_port(socket.SOCK_DGRAM)
    env = {key: value for key, value in os.environ.items() if not key.startswith("TINYMLAAS_")}
    env |= {
        "HOME": str(home),
        "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
        "TINYMLAAS_COAPS_PORT": str(coaps_port),
        "TINYMLAAS_HTTP_PORT": str(free_port(socket.SOCK_STREAM)),
    }
    shell = Tour(cwd, env, home / ".local" / "share" / "tinymlaas", coaps_port)
    yield shell
    for process in shell.running:
        if process.process.poll() is None:
            process.process.kill()
            process.process.wait()


def test_the_readme_parses_into_the_tour_a_reader_types() -> None:
    commands = tour_commands(README.read_text())
    assert commands[0] == "tinymlaas boards list"
    assert "tinymlaas serve" in commands
    agent = next(command for command in commands if command.startswith("tinymlaas agent"))
    assert "--state-dir ./pico-1" in agent and "#" not in agent  # joined, comments gone
    assert not any(command.startswith("tinymlaas datasets show field") for command in commands)


def test_the_readme_tour_runs_as_written(tour: Tour) -> None:
    assert (BIN / "tinymlaas").is_file(), f"no tinymlaas command in {BIN}: run make setup"
    commands = tour_commands(README.read_text())
    for command in commands:
        tour.run(command)

    agent = next(process for process in tour.running if " agent " in f" {process.command} ")
    agent.wait_for((r"installed gestures v\d",))  # the staged campaign reached the tour's device
    assert not (tour.cwd / ".data").exists() and tour.store.is_dir()  # the CLI's own default store
    assert tour.stop() == {process.command: 0 for process in reversed(tour.running)}
