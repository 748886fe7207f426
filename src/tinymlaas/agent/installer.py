"""Install a verified model package: inactive slot, trial, self-test in the real runtime, confirm.

The package's signature is checked before it gets here (``verified``); this module checks what
only the device can: that the package fits its slot, that its files are the ones the manifest
lists, and that the model loads within the board's RAM and reproduces its self-test vectors. Any
failure leaves the previously confirmed model running.

Crash points (``slots.crash_point``) mark the steps where a power cut matters. Tests set
``TINYMLAAS_AGENT_CRASH_AT`` to one of ``CRASH_POINTS`` to kill an install there and check that a
restart finds a confirmed model, never a half-written or untested one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinymlaas.agent.runtime import SelfTestReport, load_model, self_test
from tinymlaas.agent.sequences import ConfirmedSequences
from tinymlaas.agent.slots import SlotInfo, SlotStore, crash_point, verify_files
from tinymlaas.agent.update import UpdateResult, UpdateState, UpdateTracker
from tinymlaas.deploy.gate import module_storage
from tinymlaas.errors import Conflict, InvalidInput, TinymlaasError

__all__ = ["CRASH_POINTS", "MAX_INSTALL_ATTEMPTS", "InstallOutcome", "Installer", "package_digest"]

# Installs of one package that may die with the process before the device gives the package up.
MAX_INSTALL_ATTEMPTS = 3
CRASH_POINTS = ("mid-install", "after-install", "after-activate", "before-confirm", "after-confirm")

# The next state on the way to DELIVERED when a package arrives whole, and the result to show there.
_TOWARDS_DELIVERED = {
    UpdateState.INITIAL: (UpdateState.DOWNLOAD_STARTED, UpdateResult.DOWNLOADING),
    UpdateState.INSTALLED: (UpdateState.DOWNLOAD_STARTED, UpdateResult.DOWNLOADING),
    UpdateState.DOWNLOAD_STARTED: (UpdateState.DOWNLOADED, UpdateResult.DOWNLOADING),
    UpdateState.DOWNLOADED: (UpdateState.DELIVERED, UpdateResult.DOWNLOADED_VERIFIED),
}


def package_digest(manifest: Mapping[str, Any]) -> str:
    """Identifies a package by its manifest, which pins every file by sha256."""
    # default=dict: manifests arrive as read-only mapping proxies as well as plain dicts.
    return hashlib.sha256(json.dumps(manifest, sort_keys=True, default=dict).encode()).hexdigest()


def _label(slot: SlotInfo | None) -> str:
    model = dict(slot.manifest.get("model") or {}) if slot is not None else {}
    return f"{model.get('name') or model.get('id') or 'a model'} v{model.get('version', '?')}"


@dataclass(frozen=True)
class InstallOutcome:
    """What an install came to; ``slot`` is the slot running afterwards (None: no model at all)."""

    installed: bool
    result: UpdateResult
    slot: str | None
    detail: str
    selftest: SelfTestReport | None = None


class Installer:
    """Installs packages into the A/B slots of ``state_dir`` for a board with the given budgets.

    ``arena_limit_bytes`` is the RAM left for a TFLM tensor arena (None: unlimited);
    ``slot_flash_bytes`` the storage one model slot may take.
    """

    def __init__(self, state_dir: Path, *, arena_limit_bytes: int | None, slot_flash_bytes: int) -> None:
        self.slots = SlotStore(state_dir)
        self.tracker = UpdateTracker(state_dir)
        self.sequences = ConfirmedSequences(state_dir)
        self.arena_limit_bytes = arena_limit_bytes
        self.slot_flash_bytes = slot_flash_bytes
        self._finish_interrupted_confirm()
        # A power cut between confirming a slot and recording its sequence must not reopen the door
        # to replays: after the boot the active slot is a confirmed one, so record it again.
        active = self.slots.active()
        if active is not None:
            self.sequences.confirmed(active.manifest)

    def _finish_interrupted_confirm(self) -> None:
        # A power cut between confirming the slot and recording INSTALLED must not make the server
        # send the same package again: the confirmed slot already is the delivered package.
        if self.tracker.state is not UpdateState.DELIVERED or self.tracker.package is None:
            return
        active = self.slots.active()
        if active is not None and package_digest(active.manifest) == self.tracker.package:
            self.tracker.move(
                UpdateState.INSTALLED, UpdateResult.INSTALLED, detail="confirmed before restart"
            )

    def _running(self) -> str | None:
        active = self.slots.active()
        return active.slot if active is not None else None

    def _fail(self, to: UpdateState, result: UpdateResult, detail: str) -> InstallOutcome:
        self.tracker.move(to, result, detail=detail)
        return InstallOutcome(installed=False, result=result, slot=self._running(), detail=detail)

    def install_verified(self, manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> InstallOutcome:
        """Install a package whose signature was verified; report the LwM2M Update Result."""
        while self.tracker.state is not UpdateState.DELIVERED:
            state = self.tracker.state
            if state is UpdateState.DOWNLOAD_STARTED:
                size, what = module_storage(manifest, files)
                if size > self.slot_flash_bytes:
                    return self._fail(
                        UpdateState.INITIAL,
                        UpdateResult.NOT_ENOUGH_STORAGE,
                        f"The package needs {size} bytes ({what}); a slot holds {self.slot_flash_bytes}",
                    )
            if state is UpdateState.DOWNLOADED:
                try:
                    verify_files(manifest, files)
                except InvalidInput as exc:
                    return self._fail(UpdateState.INITIAL, UpdateResult.INTEGRITY_CHECK_FAILURE, exc.detail)
            to, result = _TOWARDS_DELIVERED[state]
            self.tracker.move(to, result, package=package_digest(manifest))
        return self._install(manifest, files)

    def uninstall(self) -> InstallOutcome:
        """Remove the running package by going back to the fallback slot, once its model passes again.

        This is how a campaign is rolled back: the fallback slot still holds the model that ran before
        the last update, confirmed then. Its self-test runs again first, so a model that no longer
        loads (a changed board budget, say) is never switched to; the running one stays. Conflict when
        no package is installed or there is no fallback.
        """
        if self.tracker.state is not UpdateState.INSTALLED:
            raise Conflict(
                f"Uninstall needs an installed package; the update state is {self.tracker.state.name}"
            )
        fallback = self.slots.fallback()
        if fallback is None:
            raise Conflict("There is no previous model to go back to; the running one stays")
        try:
            report = self_test(
                load_model(fallback, arena_limit_bytes=self.arena_limit_bytes), fallback.manifest
            )
        except TinymlaasError as exc:
            report = SelfTestReport(False, 0, float("inf"), 0.0, exc.detail)
        if not report.passed:
            detail = f"the previous model fails its self-test, so it stays unused: {report.detail}"
            return InstallOutcome(False, UpdateResult.INSTALLATION_FAILURE, self._running(), detail, report)
        removed = _label(self.slots.active())
        self.slots.revert()
        detail = f"uninstalled {removed}; back on {_label(fallback)} ({report.detail})"
        self.tracker.move(
            UpdateState.INSTALLED,
            UpdateResult.INSTALLED,
            detail=detail,
            package=package_digest(fallback.manifest),
        )
        return InstallOutcome(True, UpdateResult.INSTALLED, fallback.slot, detail, report)

    def _install(self, manifest: Mapping[str, Any], files: Mapping[str, bytes]) -> InstallOutcome:
        if self.tracker.attempts >= MAX_INSTALL_ATTEMPTS:
            return self._fail(
                UpdateState.INITIAL,
                UpdateResult.INSTALLATION_FAILURE,
                f"The install was cut short {self.tracker.attempts} times (the device restarted during it); "
                "the package is dropped so the device does not restart in a loop",
            )
        self.tracker.begin_attempt()
        try:
            slot = self.slots.install(manifest, files)
        except InvalidInput as exc:
            return self._fail(UpdateState.INITIAL, UpdateResult.INTEGRITY_CHECK_FAILURE, exc.detail)
        except (TinymlaasError, OSError) as exc:
            detail = exc.detail if isinstance(exc, TinymlaasError) else f"Writing the slot failed: {exc}"
            self.tracker.report(UpdateResult.INSTALLATION_FAILURE, detail=detail)
            return InstallOutcome(False, UpdateResult.INSTALLATION_FAILURE, self._running(), detail)
        crash_point("after-install")
        trial = self.slots.activate(slot)
        crash_point("after-activate")
        try:
            report = self_test(load_model(trial, arena_limit_bytes=self.arena_limit_bytes), trial.manifest)
        except TinymlaasError as exc:
            report = SelfTestReport(False, 0, float("inf"), 0.0, exc.detail)
        if not report.passed:
            self.slots.revert()
            self.tracker.report(UpdateResult.INSTALLATION_FAILURE, detail=report.detail)
            return InstallOutcome(
                False, UpdateResult.INSTALLATION_FAILURE, self._running(), report.detail, report
            )
        crash_point("before-confirm")
        self.slots.confirm()
        crash_point("after-confirm")
        self.sequences.confirmed(manifest)
        self.tracker.move(UpdateState.INSTALLED, UpdateResult.INSTALLED, detail=report.detail)
        return InstallOutcome(True, UpdateResult.INSTALLED, slot, report.detail, report)
