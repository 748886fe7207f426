from __future__ import annotations

import hashlib
import json

import pytest

from tinymlaas.agent import SlotStore
from tinymlaas.errors import Conflict, InvalidInput, NotFound


def _package(version: int) -> tuple[dict, dict[str, bytes]]:
    files = {"model.tflite": f"model v{version}".encode() * 10, "model.json": b"{}"}
    manifest = {
        "model": {"id": "m", "version": version, "variant": f"v{version}"},
        "runtime": "litert",
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in files.items()
        },
    }
    return manifest, files


def _install_confirmed(store: SlotStore, version: int) -> str:
    slot = store.install(*_package(version))
    store.activate(slot)
    store.confirm()
    return slot


def test_a_fresh_store_runs_nothing(tmp_path):
    assert SlotStore(tmp_path).active() is None


def test_install_writes_the_inactive_slot_and_confirm_makes_it_active(tmp_path):
    store = SlotStore(tmp_path)
    assert _install_confirmed(store, 1) == "a"
    slot_a = (tmp_path / "slots" / "a" / "model.tflite").read_bytes()
    slot = store.install(*_package(2))
    assert slot == "b"
    assert (tmp_path / "slots" / "a" / "model.tflite").read_bytes() == slot_a
    assert store.active().manifest["model"]["version"] == 1
    trial = store.activate("b")
    assert not trial.confirmed
    assert store.active() == trial
    confirmed = store.confirm()
    assert confirmed.confirmed and confirmed.slot == "b"
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["confirmed"] == "b"
    assert state["slots"]["b"]["version"] == 2
    assert state["slots"]["b"]["confirmed"] is True
    assert state["slots"]["b"]["runtime"] == "litert"
    assert store.summary() == state


def test_an_unconfirmed_trial_is_rolled_back_at_the_next_start(tmp_path):
    store = SlotStore(tmp_path)
    _install_confirmed(store, 1)
    store.activate(store.install(*_package(2)))
    after_restart = SlotStore(tmp_path).active()
    assert after_restart.slot == "a"
    assert after_restart.confirmed
    assert after_restart.manifest["model"]["version"] == 1


def test_a_restart_keeps_the_confirmed_slot(tmp_path):
    _install_confirmed(SlotStore(tmp_path), 1)
    _install_confirmed(SlotStore(tmp_path), 2)
    active = SlotStore(tmp_path).active()
    assert (active.slot, active.confirmed, active.manifest["model"]["version"]) == ("b", True, 2)


def test_revert_drops_the_trial_then_goes_back_to_the_previous_confirmed_slot(tmp_path):
    store = SlotStore(tmp_path)
    _install_confirmed(store, 1)
    store.activate(store.install(*_package(2)))
    assert store.revert().manifest["model"]["version"] == 1
    store.activate("b")
    store.confirm()
    assert store.revert().slot == "a"
    with pytest.raises(Conflict):
        store.revert()


def test_installing_over_the_fallback_slot_forgets_it(tmp_path):
    store = SlotStore(tmp_path)
    _install_confirmed(store, 1)
    _install_confirmed(store, 2)
    store.install(*_package(3))
    with pytest.raises(Conflict):
        store.revert()
    assert store.active().manifest["model"]["version"] == 2


def test_files_that_do_not_match_the_manifest_are_refused(tmp_path):
    store = SlotStore(tmp_path)
    manifest, files = _package(1)
    with pytest.raises(InvalidInput, match="sha256"):
        store.install(manifest, {**files, "model.json": b"[]"})
    with pytest.raises(InvalidInput, match="missing"):
        store.install(manifest, {"model.json": files["model.json"]})
    escaping = {**manifest, "files": {"../x": manifest["files"]["model.json"]}}
    with pytest.raises(InvalidInput, match="plain names"):
        store.install(escaping, {"../x": files["model.json"]})
    assert not (tmp_path / "x").exists()
    assert store.active() is None


def test_activate_and_confirm_guard_their_order(tmp_path):
    store = SlotStore(tmp_path)
    with pytest.raises(NotFound):
        store.activate("b")
    with pytest.raises(NotFound):
        store.activate("c")
    with pytest.raises(Conflict):
        store.confirm()
    slot = store.install(*_package(1))
    store.activate(slot)
    with pytest.raises(Conflict):
        store.install(*_package(2))
    store.confirm()
    with pytest.raises(Conflict):
        store.activate(slot)


def test_leftovers_of_an_interrupted_write_are_cleared_at_start(tmp_path):
    SlotStore(tmp_path)
    leftover = tmp_path / "slots" / ".incoming-abc"
    leftover.mkdir()
    (leftover / "model.tflite").write_bytes(b"half")
    SlotStore(tmp_path)
    assert not leftover.exists()
