"""The model a device runs: the active slot's, while Object 9 leaves it activated.

Reboot, Activate, Deactivate, install and uninstall all change what the inference loop runs; they go
through here so that each of them loads the model the same way and honours the activation state.

A pipeline relay has no sensor and so no inference loop, yet runs the installed model on the tensors
its upstream nodes send; ``runner()`` hands it the same model, loaded on first use and again after
each change.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from tinymlaas.agent.inference import InferenceLoop, Telemetry
from tinymlaas.agent.installer import Installer
from tinymlaas.agent.runtime import load_model
from tinymlaas.agent.sensors import SensorSource
from tinymlaas.errors import InvalidInput, TinymlaasError
from tinymlaas.squeeze.runtimes import Runner

__all__ = ["ActiveModel"]

_log = logging.getLogger(__name__)


_UNLOADED = object()


class ActiveModel:
    """The installed model and the inference loop running it (no loop without a sensor).

    ``activated`` is Object 9's Activation State; it lasts until the next restart.
    """

    def __init__(
        self,
        endpoint: str,
        installer: Installer,
        sensor: SensorSource | None,
        rate_hz: float,
        *,
        arena_limit_bytes: int | None,
    ) -> None:
        self._endpoint = endpoint
        self._installer = installer
        self._arena_limit = arena_limit_bytes
        self.activated = True
        self.inference = InferenceLoop(self._load(), sensor, rate_hz) if sensor is not None else None
        self._standalone: object = _UNLOADED

    def _load(self) -> Runner | None:
        try:
            active = self._installer.slots.active()
            return load_model(active, arena_limit_bytes=self._arena_limit) if active is not None else None
        except TinymlaasError as exc:
            _log.warning("%s: the installed model does not load: %s", self._endpoint, exc.detail)
            return None

    def manifest(self) -> Mapping[str, Any]:
        """The active slot's manifest; empty when no model is installed or its manifest is unreadable."""
        try:
            active = self._installer.slots.active()
        except InvalidInput:
            return {}
        return active.manifest if active is not None else {}

    def runner(self) -> Runner | None:
        """The model to run now: the inference loop's, or without a loop one loaded for the caller on
        first use (it may take a while: call it from a worker thread); None while deactivated or
        when no model loads."""
        if self.inference is not None:
            return self.inference.runner
        if not self.activated:
            return None
        if self._standalone is _UNLOADED:
            self._standalone = self._load()
        return self._standalone if isinstance(self._standalone, Runner) else None

    def reload(self) -> None:
        """Load the model afresh from its slot, or run none while deactivated."""
        self._standalone = _UNLOADED
        if self.inference is not None:
            self.inference.swap(self._load() if self.activated else None)

    def installed(self) -> None:
        """Run the model an install or uninstall left in the active slot, unless deactivated."""
        self._standalone = _UNLOADED
        if self.inference is not None and self.activated:
            self.inference.swap(self._load())

    def telemetry(self) -> Telemetry | None:
        """The inference loop's figures; None when the agent has no sensor."""
        return self.inference.telemetry() if self.inference is not None else None
