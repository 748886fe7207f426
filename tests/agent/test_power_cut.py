"""A power cut at every crash point of an install leaves a confirmed model, never a half-done one.

Each install runs in a child process that dies hard (``os._exit``) at the chosen point; the test
then opens the state directory as a rebooted device would.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from tinymlaas.agent import CRASH_POINTS, Installer, SlotStore, UpdateResult, UpdateState
from tinymlaas.agent.installer import MAX_INSTALL_ATTEMPTS
from tinymlaas.agent.slots import CRASH_ENV

ARENA_LIMIT = 192 * 1024
SLOT_FLASH = 380 * 1024
CHILD = """
import io, json, sys, zipfile
from pathlib import Path
from tinymlaas.agent import Installer

with zipfile.ZipFile(io.BytesIO(Path(sys.argv[1]).read_bytes())) as archive:
    files = {name: archive.read(name) for name in archive.namelist()}
manifest = json.loads(files.pop("manifest.json"))
state_dir, arena_limit, slot_flash = Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
installer = Installer(state_dir, arena_limit_bytes=arena_limit, slot_flash_bytes=slot_flash)
outcome = installer.install_verified(manifest, files)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "keras"))
print(json.dumps({"installed": outcome.installed, "heavy": heavy}))
"""


def _install_in_child(tmp_path, package, state_dir, crash_at: str | None) -> subprocess.CompletedProcess:
    package_path = tmp_path / "package.zip"
    package_path.write_bytes(package.zip)
    env = {key: value for key, value in os.environ.items() if key != CRASH_ENV}
    if crash_at is not None:
        env[CRASH_ENV] = crash_at
    command = [
        sys.executable,
        "-c",
        CHILD,
        str(package_path),
        str(state_dir),
        str(ARENA_LIMIT),
        str(SLOT_FLASH),
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)


def _assert_intact(slot) -> None:
    for name, entry in slot.manifest["files"].items():
        data = (slot.path / name).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry["size"], entry["sha256"])


def test_an_install_in_a_process_without_tensorflow_succeeds(tmp_path, packages):
    result = _install_in_child(tmp_path, packages[("tflm", 1)], tmp_path / "state", None)
    assert result.returncode == 0, result.stderr
    assert '"installed": true' in result.stdout
    assert '"heavy": []' in result.stdout


@pytest.mark.parametrize("crash_at", CRASH_POINTS)
def test_a_power_cut_during_an_update_leaves_a_confirmed_model(tmp_path, packages, crash_at):
    state_dir = tmp_path / "state"
    old, new = packages[("tflm", 1)], packages[("tflm", 2)]
    assert (
        Installer(state_dir, arena_limit_bytes=ARENA_LIMIT, slot_flash_bytes=SLOT_FLASH)
        .install_verified(old.manifest, old.files)
        .installed
    )

    result = _install_in_child(tmp_path, new, state_dir, crash_at)
    assert result.returncode == 137, result.stderr

    active = SlotStore(state_dir).active()
    assert active is not None and active.confirmed
    expected = new if crash_at == "after-confirm" else old
    assert dict(active.manifest) == expected.manifest
    _assert_intact(active)
    assert not [p for p in (state_dir / "slots").iterdir() if p.name.startswith(".")]

    installer = Installer(state_dir, arena_limit_bytes=ARENA_LIMIT, slot_flash_bytes=SLOT_FLASH)
    if crash_at == "after-confirm":
        assert installer.tracker.state is UpdateState.INSTALLED
    else:
        assert installer.install_verified(new.manifest, new.files).installed
        assert installer.slots.active().manifest["model"]["version"] == 2


@pytest.mark.parametrize("crash_at", ["mid-install", "before-confirm"])
def test_a_power_cut_during_the_first_install_leaves_no_model(tmp_path, packages, crash_at):
    state_dir = tmp_path / "state"
    result = _install_in_child(tmp_path, packages[("litert", 1)], state_dir, crash_at)
    assert result.returncode == 137, result.stderr
    assert SlotStore(state_dir).active() is None


def test_a_package_that_kills_every_install_is_given_up_and_the_old_model_runs(tmp_path, packages):
    state_dir = tmp_path / "state"
    old, new = packages[("tflm", 1)], packages[("tflm", 2)]
    installer = Installer(state_dir, arena_limit_bytes=ARENA_LIMIT, slot_flash_bytes=SLOT_FLASH)
    assert installer.install_verified(old.manifest, old.files).installed
    for attempt in range(1, MAX_INSTALL_ATTEMPTS + 1):
        assert _install_in_child(tmp_path, new, state_dir, "after-activate").returncode == 137
        assert Installer(
            state_dir, arena_limit_bytes=ARENA_LIMIT, slot_flash_bytes=SLOT_FLASH
        ).tracker.attempts == (attempt)

    rebooted = Installer(state_dir, arena_limit_bytes=ARENA_LIMIT, slot_flash_bytes=SLOT_FLASH)
    outcome = rebooted.install_verified(new.manifest, new.files)
    assert not outcome.installed
    assert outcome.result is UpdateResult.INSTALLATION_FAILURE
    assert f"cut short {MAX_INSTALL_ATTEMPTS} times" in outcome.detail
    assert rebooted.tracker.state is UpdateState.INITIAL
    assert rebooted.slots.active().manifest["model"]["version"] == 1
    # The next package (or the same one sent again) starts a fresh count.
    assert rebooted.install_verified(new.manifest, new.files).installed
