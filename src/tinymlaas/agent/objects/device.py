"""Object 3, Device, on the agent: identity from the board profile, free memory, and Reboot.

The server matches the device to its board by the Model Number (the board id); Reboot is emulated: the
model is loaded afresh from its slot and the device registers again.

Hand-written on the aiocoap-free LwM2M core, as every provider is (see ``objects.base``).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tinymlaas.agent.active_model import ActiveModel
from tinymlaas.agent.objects.base import ObjectProvider, package_version
from tinymlaas.agent.objects.tinyml_runtime import TinymlRuntimeProvider
from tinymlaas.catalog.board import Board
from tinymlaas.lwm2m.core import DEVICE, Path, Value
from tinymlaas.lwm2m.transport import CoapResponse

__all__ = ["MANUFACTURER", "DeviceProvider"]

MANUFACTURER = "TinyMLaaS emulator"


class DeviceProvider(ObjectProvider):
    """``/3/0``: the endpoint name is the serial number, the Software Version names ``runtime``'s."""

    definition = DEVICE

    def __init__(
        self,
        board: Board,
        endpoint: str,
        model: ActiveModel,
        runtime: TinymlRuntimeProvider,
        *,
        reregister: Callable[[], None],
    ) -> None:
        self._board = board
        self._endpoint = endpoint
        self._model = model
        self._software_version = f"{runtime.name} {runtime.version}"
        self._reregister = reregister

    def values(self) -> dict[Path, Value]:
        board = self._board
        manifest = self._model.manifest()
        model_ram = manifest.get("ram_bytes") if isinstance(manifest.get("ram_bytes"), int) else 0
        return {
            Path(3, 0, 0): MANUFACTURER,
            Path(3, 0, 1): board.id,
            Path(3, 0, 2): self._endpoint,
            Path(3, 0, 3): f"tinymlaas-agent {package_version('tinymlaas')}",
            Path(3, 0, 10): max(0, board.usable_ram_bytes - model_ram) // 1024,
            Path(3, 0, 11, 0): 0,
            Path(3, 0, 13): int(time.time()),
            Path(3, 0, 16): "U",
            Path(3, 0, 17): board.board_class.value,
            Path(3, 0, 18): board.soc,
            Path(3, 0, 19): self._software_version,
            Path(3, 0, 21): board.ram_bytes // 1024,
        }

    async def execute(self, path: Path, argument: bytes) -> CoapResponse:
        if path.resource_id != 4:
            return await super().execute(path, argument)
        self._model.reload()
        self._reregister()
        return CoapResponse("2.04")
