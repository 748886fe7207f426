"""Per-core timing figures: how many cycles an instruction costs on average in int8 kernels.

Emulation counts instructions, not cycles; a board's latency estimate needs a cycles-per-
instruction figure for its core and a range that says how far that figure can be trusted. The
figures live in ``cores.toml`` beside the board files, each with its source, and a file with a
missing or unsourced figure is refused for the same reason board files are: a silent wrong figure
would mislead every latency estimate built on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from tinymlaas.catalog.loader import _check_slug, _read_toml, _reject_unknown_keys, _required, _typed
from tinymlaas.errors import InvalidInput

__all__ = ["CoreTiming", "core_timing", "estimate_ms", "load_core_timings"]

_KEYS = frozenset({"cpi", "cpi_low", "cpi_high", "source"})
_FIGURES = ("cpi", "cpi_low", "cpi_high")


@dataclass(frozen=True)
class CoreTiming:
    """Cycles per instruction on one core, with the range the source can defend."""

    core: str
    cpi: float
    cpi_low: float
    cpi_high: float
    source: str


def load_core_timings(file: Traversable | Path | None = None) -> dict[str, CoreTiming]:
    """Read and check a cores file (the built-in ``cores.toml`` when ``file`` is None).

    ``InvalidInput`` names the file, the core and the problem: a figure that is missing, not a
    positive number, out of order (low <= cpi <= high) or without a source.
    """
    path = file if file is not None else resources.files("tinymlaas.catalog") / "cores.toml"
    where = str(path)
    return {core: _parse_core(core, value, where) for core, value in _read_toml(path).items()}


def _parse_core(core: str, value: Any, where: str) -> CoreTiming:
    _check_slug(core, "core", where)
    table = _typed(value, core, dict, where)
    here = f"{where} [{core}]"
    _reject_unknown_keys(table, _KEYS, here)
    figures = {key: _number(table, key, here) for key in _FIGURES}
    if not 0 < figures["cpi_low"] <= figures["cpi"] <= figures["cpi_high"]:
        raise InvalidInput(
            f"{here}: need 0 < cpi_low <= cpi <= cpi_high, got "
            f"{figures['cpi_low']}, {figures['cpi']}, {figures['cpi_high']}"
        )
    source = _required(table, "source", str, here)
    if not source.strip():
        raise InvalidInput(f"{here}: source is empty; say where the figures come from")
    return CoreTiming(core=core, source=source, **figures)


def _number(table: Mapping[str, Any], key: str, where: str) -> float:
    if key not in table:
        raise InvalidInput(f"{where}: missing field {key!r}")
    value = table[key]
    # bool is an int subclass: `cpi = true` must not pass as 1.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where}: field {key!r} must be a number, not {type(value).__name__} ({value!r})")
    return float(value)


@cache
def _builtin() -> Mapping[str, CoreTiming]:
    return load_core_timings()


def core_timing(core: str) -> CoreTiming | None:
    """The built-in figures for ``core``, or None where no source gives one (no estimate then)."""
    return _builtin().get(core)


def estimate_ms(instructions: int, core: str, clock_mhz: float) -> tuple[float, float, float] | None:
    """Latency in milliseconds for ``instructions`` on ``core`` at ``clock_mhz``: (estimate, low, high).

    None when the core has no timing figures, so callers show "no estimate" rather than a number.
    """
    if instructions < 0 or clock_mhz <= 0:
        raise InvalidInput(f"need instructions >= 0 and clock_mhz > 0, got {instructions} and {clock_mhz}")
    timing = core_timing(core)
    if timing is None:
        return None
    # cycles / (MHz * 1e6) seconds, times 1e3 for milliseconds.
    per_instruction_ms = 1.0 / (clock_mhz * 1e3)
    return (
        instructions * timing.cpi * per_instruction_ms,
        instructions * timing.cpi_low * per_instruction_ms,
        instructions * timing.cpi_high * per_instruction_ms,
    )
