"""Anti-rollback: the newest package sequence this device confirmed, per model line.

A signature proves who made a package, not when, so an old, validly signed package could be replayed
to put a device back on a model with a known flaw. The server stamps every package it signs with a
sequence that only grows per model line (``deploy.package``); the device remembers the highest one it
confirmed (installed and self-tested) and refuses any package that is not higher. Only a confirmed
package counts: one that failed its self-test must not lock the device out of a fixed package signed
before it. Going back to the previous slot (Uninstall, a campaign rollback) installs no package, so it
is not refused; an operator who wants an older model deployed anew has it signed again.

Kept in ``sequences.json`` of the state directory, written atomically, so neither a restart nor a power
cut forgets it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tinymlaas.deploy.package import SEQUENCE_FIELD, model_line
from tinymlaas.errors import InvalidInput
from tinymlaas.files import write_json_atomic

__all__ = ["SEQUENCES_FILE", "ConfirmedSequences"]

SEQUENCES_FILE = "sequences.json"


class ConfirmedSequences:
    """Model line -> the highest sequence confirmed on this device, persisted in ``state_dir``."""

    def __init__(self, state_dir: Path) -> None:
        self._path = Path(state_dir) / SEQUENCES_FILE
        self._highest: dict[str, int] = {}
        if self._path.exists():
            try:
                saved = json.loads(self._path.read_text())
            except (OSError, ValueError) as exc:
                raise InvalidInput(f"Confirmed package sequences {self._path} cannot be read: {exc}") from exc
            if not isinstance(saved, dict) or not all(
                isinstance(value, int) and not isinstance(value, bool) for value in saved.values()
            ):
                raise InvalidInput(
                    f"Confirmed package sequences {self._path} are not an object of model line -> integer"
                )
            self._highest = saved

    def highest(self, line: str) -> int | None:
        return self._highest.get(line)

    def refusal(self, manifest: Mapping[str, Any]) -> str | None:
        """Why the package of ``manifest`` must not be installed here, or None when it is newer."""
        line = model_line(manifest)
        sequence = manifest[SEQUENCE_FIELD]
        highest = self._highest.get(line)
        if highest is None or sequence > highest:
            return None
        model = manifest.get("model") or {}
        return (
            f"refused {line} v{model.get('version', '?')}: its sequence {sequence} is not above {highest}, "
            "the newest this device confirmed for that model, so it is an older package sent again "
            "(a replay or downgrade); to go back to an older model, roll the campaign back or deploy "
            "it anew"
        )

    def confirmed(self, manifest: Mapping[str, Any]) -> None:
        """Record the sequence of a package now confirmed, unless a higher one was confirmed before.

        A slot installed before packages carried sequences has none and records nothing.
        """
        sequence = manifest.get(SEQUENCE_FIELD)
        if not isinstance(sequence, int) or isinstance(sequence, bool):
            return
        line = model_line(manifest)
        if sequence <= self._highest.get(line, 0):
            return
        highest = {**self._highest, line: sequence}
        write_json_atomic(self._path, highest)
        self._highest = highest
