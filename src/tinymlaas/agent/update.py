"""The agent's update state machine, mirroring LwM2M Object 9 (Software Management) resource 7.

The server reads the state and the Update Result (resource 9) to follow an installation, so the
agent keeps exactly the object's vocabulary and persists it: after a restart the server must see
where the update stood, not a fresh INITIAL that hides a failed or half-done install.
"""

from __future__ import annotations

import json
from pathlib import Path

from tinymlaas.errors import InvalidInput
from tinymlaas.files import write_json_atomic
from tinymlaas.lwm2m.core import TRANSITIONS, UpdateResult, UpdateState

__all__ = ["TRANSITIONS", "UpdateResult", "UpdateState", "UpdateTracker"]

UPDATE_FILE = "update.json"


class UpdateTracker:
    """State, result and detail of the current update, persisted in ``update.json`` of the state dir.

    ``package`` names the package in hand (a digest of its manifest) so that a restart can tell
    whether the confirmed model already is that package. ``attempts`` counts installs of it that
    began and never ended (the process died during them), so a package that kills the device is
    not installed again on every boot.
    """

    def __init__(self, state_dir: Path) -> None:
        self._path = Path(state_dir) / UPDATE_FILE
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self.state = UpdateState.INITIAL
        self.result = UpdateResult.INITIAL
        self.detail = ""
        self.package: str | None = None
        self.attempts = 0
        if self._path.exists():
            try:
                saved = json.loads(self._path.read_text())
                self.state = UpdateState(saved["state"])
                self.result = UpdateResult(saved["result"])
                self.detail = str(saved.get("detail", ""))
                self.package = saved.get("package")
                self.attempts = int(saved.get("attempts", 0))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"Update state {self._path} cannot be read: {exc}") from exc

    def _save(self) -> None:
        write_json_atomic(
            self._path,
            {
                "state": int(self.state),
                "result": int(self.result),
                "detail": self.detail,
                "package": self.package,
                "attempts": self.attempts,
            },
        )

    def move(
        self, to: UpdateState, result: UpdateResult, *, detail: str = "", package: str | None = None
    ) -> None:
        """Go to state ``to`` along ``TRANSITIONS`` (InvalidInput otherwise) and record ``result``.

        ``package`` replaces the recorded one when given; INITIAL holds no package.
        """
        if to not in TRANSITIONS[self.state]:
            raise InvalidInput(f"Update state cannot go from {self.state.name} to {to.name}")
        self.state = to
        self.result = result
        self.detail = detail
        self.attempts = 0
        if package is not None:
            self.package = package
        if to is UpdateState.INITIAL:
            self.package = None
        self._save()

    def report(self, result: UpdateResult, *, detail: str = "") -> None:
        """Record a result without a state change (an install that failed leaves the package DELIVERED)."""
        self.result = result
        self.detail = detail
        self.attempts = 0
        self._save()

    def begin_attempt(self) -> None:
        """Count an install as begun, on disk before it starts; ``move`` and ``report`` end it."""
        self.attempts += 1
        self._save()
