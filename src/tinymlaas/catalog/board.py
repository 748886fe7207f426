"""Board profiles and runtime profiles as frozen values.

A board profile says what a device can hold and run; a runtime profile says what a runtime costs
in flash and RAM on a given core and which operators it implements. Both come from data files
(see ``loader``), each figure with the source it was taken from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from tinymlaas.errors import InvalidInput

__all__ = ["Board", "BoardClass", "Footprint", "RuntimeProfile"]


class BoardClass(StrEnum):
    MCU = "mcu"  # bare-metal or RTOS microcontroller: TFLM, model in flash, arena in SRAM
    LINUX = "linux"  # Linux-class single-board computer or host: LiteRT, model file in RAM


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Board:
    """One board. Byte figures are bytes; ``usable_*`` is what is left for a model after firmware/OS."""

    id: str
    name: str
    board_class: BoardClass
    soc: str
    core: str  # core family used to look up runtime footprints: "cortex-m4f", "cortex-a72", ...
    clock_mhz: int
    flash_bytes: int
    ram_bytes: int
    usable_flash_bytes: int
    usable_ram_bytes: int
    runtimes: tuple[str, ...]  # in order of preference
    accelerator: str | None
    transports: tuple[str, ...]
    sensors: tuple[str, ...]
    # Field name -> where the figure comes from (datasheet, product page, measurement, estimate).
    sources: Mapping[str, str] = field(default_factory=lambda: _frozen({}))
    notes: str = ""
    # cpu_active_mw, radio_tx_mw, radio_rx_mw where a source gives them (sources["power"]); else empty.
    power_mw: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        object.__setattr__(self, "sources", _frozen(self.sources))
        object.__setattr__(self, "power_mw", MappingProxyType(dict(self.power_mw)))

    def running(self, runtime: str | None) -> Board:
        """This board with ``runtime`` first: the runtime an emulated device's firmware runs.

        A device runs one runtime (its firmware); the catalog lists every runtime the board can take.
        """
        if runtime is None or runtime == self.runtimes[0]:
            return self
        if runtime not in self.runtimes:
            raise InvalidInput(
                f"Board {self.id} does not run {runtime!r}; it runs: {', '.join(self.runtimes) or 'none'}"
            )
        return replace(self, runtimes=(runtime, *(r for r in self.runtimes if r != runtime)))

    def as_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready fields (``dataclasses.asdict`` cannot copy the read-only sources)."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        return {
            **data,
            "runtimes": list(self.runtimes),
            "transports": list(self.transports),
            "sensors": list(self.sensors),
            "sources": dict(self.sources),
            "power_mw": dict(self.power_mw),
        }


@dataclass(frozen=True)
class Footprint:
    """What a runtime itself costs on one core family, beyond the model bytes and the tensor arena."""

    flash_bytes: int  # interpreter/framework code and constant data
    per_op_flash_bytes: int  # average kernel code added per registered operator
    ram_bytes: int  # runtime state outside the arena (interpreter objects, stack headroom)
    source: str


@dataclass(frozen=True)
class RuntimeProfile:
    """A runtime a module can target (``tflm``, ``litert``)."""

    id: str
    name: str
    # Builtin operator names the runtime implements; None means "the full TFLite builtin set".
    supported_ops: frozenset[str] | None
    footprints: Mapping[str, Footprint]  # core family -> footprint; "default" is the fallback
    source: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "footprints", MappingProxyType(dict(self.footprints)))

    def footprint_for(self, core: str) -> Footprint:
        return self.footprints.get(core) or self.footprints["default"]

    def unsupported(self, ops: tuple[str, ...]) -> tuple[str, ...]:
        if self.supported_ops is None:
            return ()
        return tuple(op for op in ops if op not in self.supported_ops)
