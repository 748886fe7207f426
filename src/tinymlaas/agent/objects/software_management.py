"""Object 9, Software Management, on the agent: the installed model and its update state machine.

Values come from the active slot's manifest and the persisted update state; Package URI, Install and
Uninstall go to the ``Updater``. Deactivate stops inference and Activate resumes it, until the next
restart.

Hand-written on the aiocoap-free LwM2M core, as every provider is (see ``objects.base``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from tinymlaas.agent.active_model import ActiveModel
from tinymlaas.agent.objects.base import ObjectProvider
from tinymlaas.agent.updater import Updater
from tinymlaas.lwm2m.core import SOFTWARE_MANAGEMENT, Path, Value
from tinymlaas.lwm2m.transport import CoapResponse

__all__ = ["STATE_PATHS", "SoftwareManagementProvider"]

PACKAGE_URI = Path(9, 0, 3)
ACTIVATION_STATE = Path(9, 0, 12)
STATE_PATHS = tuple(Path(9, 0, resource) for resource in (0, 1, 7, 9, 12, 16))
"""The resources an update or an uninstall may change."""


class SoftwareManagementProvider(ObjectProvider):
    """``/9/0``: one instance for the model package in the device's A/B slots."""

    definition = SOFTWARE_MANAGEMENT
    writable = frozenset({PACKAGE_URI})

    def __init__(
        self, updater: Updater, model: ActiveModel, changed: Callable[[Iterable[Path]], None]
    ) -> None:
        self._updater = updater
        self._model = model
        self._changed = changed

    def values(self) -> dict[Path, Value]:
        manifest = self._model.manifest()
        model = manifest.get("model") if isinstance(manifest.get("model"), Mapping) else {}
        tracker = self._updater.tracker
        return {
            Path(9, 0, 0): str(model.get("name") or model.get("id") or ""),
            Path(9, 0, 1): str(model.get("version", "")),
            Path(9, 0, 7): int(tracker.state),
            Path(9, 0, 8): False,
            Path(9, 0, 9): int(tracker.result),
            ACTIVATION_STATE: self._model.activated and bool(manifest),
            Path(9, 0, 16): self._updater.status_reason(),
        }

    async def write(self, values: Mapping[Path, Value]) -> CoapResponse:
        return await self._updater.package_uri_written(str(values[PACKAGE_URI]))

    async def execute(self, path: Path, argument: bytes) -> CoapResponse:
        match path.resource_id:
            case 4:
                return self._updater.install()
            case 6:
                return await self._updater.uninstall(argument)
            case 10 | 11:
                self._model.activated = path.resource_id == 10
                self._model.reload()
                self._changed([ACTIVATION_STATE])
                return CoapResponse("2.04")
        return await super().execute(path, argument)
