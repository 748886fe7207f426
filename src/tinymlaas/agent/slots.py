"""A/B model slots on the device's own storage, with MCUboot-style trial and confirm.

A new model is written into the slot that is not running, then activated as a *trial*. Only an
explicit ``confirm`` (after the self-test passed) makes it the model a restart comes back to; a
trial still pending when the process dies is dropped the next time the store is opened, so the
device boots the last confirmed model. Every change reaches the disk through a temporary name,
``fsync`` and ``os.replace`` (and an ``fsync`` of the directory, which makes the rename durable),
so a power cut at any instant leaves either the old state or the new one, never a mix.

On disk, under the state directory::

    state.json        which slot is confirmed, which is on trial, what each slot holds
    slots/a/, slots/b/  the module's files plus its manifest.json

A process should open one ``SlotStore`` per state directory: opening one is a boot, and a boot
rolls back any trial another open store has pending.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tinymlaas.errors import Conflict, InvalidInput, NotFound
from tinymlaas.files import fsync_dir, write_json_atomic

__all__ = ["CRASH_ENV", "SLOTS", "SlotInfo", "SlotStore", "crash_point", "verify_files"]

SLOTS = ("a", "b")
STATE_FILE = "state.json"
MANIFEST_FILE = "manifest.json"
STATE_SCHEMA = 1
# Power-cut tests set this to a crash point's name; the process then dies there as if the power
# went, without cleanup, so the tests can check what a restart finds. Unset on real devices.
CRASH_ENV = "TINYMLAAS_AGENT_CRASH_AT"
_CRASH_EXIT_CODE = 137  # what a SIGKILLed process reports, so the death reads as a hard kill
_TEMP_PREFIX = ".incoming-"
_TRASH_PREFIX = ".discarded-"


def crash_point(name: str) -> None:
    """Die here, without flushing or cleaning up anything, when ``CRASH_ENV`` names this point."""
    if os.environ.get(CRASH_ENV) == name:
        os._exit(_CRASH_EXIT_CODE)


def _write_file_synced(path: Path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def verify_files(manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> None:
    """InvalidInput unless ``files`` are exactly the manifest's files, each with its size and sha256."""
    listed = manifest.get("files")
    if not isinstance(listed, Mapping) or not listed:
        raise InvalidInput("The manifest lists no files")
    if MANIFEST_FILE in listed or any(Path(name).name != name or name.startswith(".") for name in listed):
        raise InvalidInput("Package file names must be plain names, other than manifest.json")
    missing = sorted(set(listed) - set(files))
    extra = sorted(set(files) - set(listed))
    if missing or extra:
        raise InvalidInput(
            f"The package's files differ from its manifest: missing {missing}, unlisted {extra}"
        )
    for name, entry in listed.items():
        data = files[name]
        expected = (entry.get("size"), entry.get("sha256")) if isinstance(entry, Mapping) else None
        if expected != (len(data), hashlib.sha256(data).hexdigest()):
            raise InvalidInput(f"{name} does not match the size and sha256 its manifest gives")


def _summary(manifest: Mapping[str, Any]) -> dict[str, Any]:
    model = manifest.get("model") or {}
    return {
        "model_id": model.get("id"),
        "version": model.get("version"),
        "variant": model.get("variant"),
        "runtime": manifest.get("runtime"),
        "confirmed": False,
        "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


@dataclass(frozen=True)
class SlotInfo:
    """One slot's installed module. ``confirmed`` is False only for a trial awaiting its self-test."""

    slot: str
    manifest: Mapping[str, Any]
    path: Path
    confirmed: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "manifest", MappingProxyType(dict(self.manifest)))


class SlotStore:
    """The A/B slots of one state directory. Opening it performs the boot-time rollback."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self._slots_dir = self.state_dir / "slots"
        self._slots_dir.mkdir(parents=True, exist_ok=True)
        self._state_path = self.state_dir / STATE_FILE
        self._state = self._load()
        self._boot()

    def _load(self) -> dict[str, Any]:
        if not self._state_path.exists():
            return {"schema": STATE_SCHEMA, "confirmed": None, "previous": None, "trial": None, "slots": {}}
        try:
            state = json.loads(self._state_path.read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"Slot state {self._state_path} cannot be read: {exc}") from exc
        if state.get("schema") != STATE_SCHEMA:
            raise InvalidInput(f"Slot state {self._state_path} has unknown schema {state.get('schema')!r}")
        return state

    def _save(self, **changes: Any) -> None:
        state = {**self._state, **changes}
        write_json_atomic(self._state_path, state)
        self._state = state

    def _boot(self) -> None:
        # A trial the previous run never confirmed may be the model that brought it down.
        if self._state["trial"] is not None:
            self._save(trial=None)
        for leftover in self._slots_dir.iterdir():
            if leftover.name.startswith((_TEMP_PREFIX, _TRASH_PREFIX)):
                shutil.rmtree(leftover, ignore_errors=True)

    def _info(self, slot: str, *, confirmed: bool) -> SlotInfo:
        path = self._slots_dir / slot
        try:
            manifest = json.loads((path / MANIFEST_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise InvalidInput(f"Slot {slot} has no readable manifest: {exc}") from exc
        return SlotInfo(slot=slot, manifest=manifest, path=path, confirmed=confirmed)

    @property
    def inactive(self) -> str:
        """The slot an install writes to: never the confirmed one."""
        return SLOTS[1] if self._state["confirmed"] == SLOTS[0] else SLOTS[0]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready copy of the slot state (for telemetry and status output)."""
        return json.loads(json.dumps(self._state))

    def install(self, manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> str:
        """Write a verified module into the inactive slot and return that slot's name."""
        if self._state["trial"] is not None:
            raise Conflict(f"Slot {self._state['trial']} is on trial; confirm or revert it first")
        verify_files(manifest, files)
        slot = self.inactive
        incoming = Path(tempfile.mkdtemp(prefix=_TEMP_PREFIX, dir=self._slots_dir))
        try:
            for name, data in files.items():
                _write_file_synced(incoming / name, data)
            manifest_json = json.dumps(manifest, indent=2, sort_keys=True, default=dict)
            _write_file_synced(incoming / MANIFEST_FILE, manifest_json.encode())
            fsync_dir(incoming)
        except BaseException:
            shutil.rmtree(incoming, ignore_errors=True)
            raise
        crash_point("mid-install")
        # Forget the slot's old content before removing it, so the state never names a missing model.
        slots = {key: value for key, value in self._state["slots"].items() if key != slot}
        previous = None if self._state["previous"] == slot else self._state["previous"]
        self._save(slots=slots, previous=previous)
        target = self._slots_dir / slot
        if target.exists():
            target.rename(self._slots_dir / f"{_TRASH_PREFIX}{slot}")
        os.replace(incoming, target)
        fsync_dir(self._slots_dir)
        self._save(slots={**slots, slot: _summary(manifest)})
        shutil.rmtree(self._slots_dir / f"{_TRASH_PREFIX}{slot}", ignore_errors=True)
        return slot

    def activate(self, slot: str) -> SlotInfo:
        """Run ``slot`` on trial; only ``confirm`` makes it survive a restart."""
        if slot not in SLOTS:
            raise NotFound(f"No slot {slot!r}; slots are {', '.join(SLOTS)}")
        if self._state["trial"] is not None:
            raise Conflict(f"Slot {self._state['trial']} is already on trial")
        if slot == self._state["confirmed"]:
            raise Conflict(f"Slot {slot} is already the confirmed slot")
        if slot not in self._state["slots"]:
            raise NotFound(f"Slot {slot} holds no installed module")
        self._save(trial=slot)
        return self._info(slot, confirmed=False)

    def confirm(self) -> SlotInfo:
        """Make the trial slot the one every restart runs; the old confirmed slot becomes the fallback."""
        trial = self._state["trial"]
        if trial is None:
            raise Conflict("No slot is on trial")
        slots = {**self._state["slots"], trial: {**self._state["slots"][trial], "confirmed": True}}
        self._save(slots=slots, previous=self._state["confirmed"], confirmed=trial, trial=None)
        return self._info(trial, confirmed=True)

    def revert(self) -> SlotInfo | None:
        """Drop the trial, or with none pending go back to the previously confirmed slot.

        Returns what runs now (None when no model was ever confirmed); Conflict if there is nothing
        to go back to.
        """
        if self._state["trial"] is not None:
            self._save(trial=None)
        elif self._state["previous"] is not None:
            self._save(confirmed=self._state["previous"], previous=None)
        else:
            raise Conflict("There is no trial and no previously confirmed slot to revert to")
        return self.active()

    def fallback(self) -> SlotInfo | None:
        """The previously confirmed slot ``revert`` would go back to; None when there is none."""
        if self._state["trial"] is not None or self._state["previous"] is None:
            return None
        return self._info(self._state["previous"], confirmed=True)

    def active(self) -> SlotInfo | None:
        """The slot to run: this run's trial if one is pending, else the last confirmed slot."""
        if self._state["trial"] is not None:
            return self._info(self._state["trial"], confirmed=False)
        if self._state["confirmed"] is not None:
            return self._info(self._state["confirmed"], confirmed=True)
        return None
