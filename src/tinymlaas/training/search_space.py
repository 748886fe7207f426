"""Constraint-aware model search as pure values: what each zoo family searches, the budget a trial is
held to, the size estimate that prunes a trial before it trains, and the Pareto front of the rest.

Nothing here trains or imports TensorFlow: ``services.search`` runs the trials (as Ray Tune trials)
and hands their figures to these functions, so every rule about budgets and fronts is stated once.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from types import MappingProxyType
from typing import Any

from tinymlaas.errors import InvalidInput

__all__ = [
    "HYPERPARAMETERS",
    "MAX_EPOCHS",
    "MAX_TRIALS",
    "MAX_WORKERS",
    "SEARCH_TRANSITIONS",
    "SPACES",
    "Budget",
    "Estimate",
    "Point",
    "SearchState",
    "TrialState",
    "check_hyperparameters",
    "check_space",
    "closest",
    "describe",
    "distinct_configs",
    "estimate",
    "excess",
    "largest_activation_pair",
    "pareto_front",
    "parse_bytes",
    "split_config",
]

MAX_TRIALS = 200
MAX_WORKERS = 64  # concurrent trials
MAX_EPOCHS = 500
# Bounds on every hyperparameter beyond the width multiplier: (lowest, highest), inclusive.
_BOUNDS: Mapping[str, tuple[int, int]] = MappingProxyType(
    {"depth": (1, 4), "kernel": (1, 9), "stride": (1, 4)}
)
# What each family takes beyond the width; a family missing here searches its width only.
HYPERPARAMETERS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "cnn1d": frozenset({"depth", "kernel", "stride"}),
        "cnn2d": frozenset({"kernel"}),
        "dense": frozenset({"depth"}),
    }
)
WIDTH_BOUNDS = (0.0625, 4.0)
# The values a search samples from, per family. cnn1d: width multiplier, conv blocks, one kernel size
# for every block, and the first convolution's step over the window (every 1st or 2nd sample);
# cnn2d: width and kernel; dense: width and hidden layers; mobilenet and gate: width only.
SPACES: Mapping[str, Mapping[str, tuple[float, ...]]] = MappingProxyType(
    {
        "cnn1d": {
            "width": (0.25, 0.5, 0.75, 1.0),
            "depth": (1, 2, 3, 4),
            "kernel": (3, 5, 7),
            "stride": (1, 2),
        },
        "cnn2d": {"width": (0.25, 0.5, 1.0), "kernel": (3, 5)},
        "dense": {"width": (0.25, 0.5, 1.0, 2.0), "depth": (1, 2, 3)},
        "mobilenet": {"width": (0.25, 0.5, 1.0)},
        "gate": {"width": (0.5, 1.0, 2.0)},
    }
)


class TrialState(Enum):
    """How one trial ended."""

    MEASURED = "measured"  # trained, converted to int8 and measured
    PRUNED = "pruned"  # its size estimate could not fit the budget on any board; never trained
    FAILED = "failed"  # it raised, or its worker died; the error is recorded


class SearchState(Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


SEARCH_TRANSITIONS: Mapping[SearchState, frozenset[SearchState]] = MappingProxyType(
    {
        SearchState.RUNNING: frozenset({SearchState.SUCCEEDED, SearchState.FAILED}),
        SearchState.SUCCEEDED: frozenset(),
        SearchState.FAILED: frozenset(),
    }
)


def check_hyperparameters(arch: str, hyper: Mapping[str, Any]) -> dict[str, int]:
    """``hyper`` as the family's keyword arguments, refused by name when unknown or out of bounds."""
    allowed = HYPERPARAMETERS.get(arch, frozenset())
    unknown = sorted(set(hyper) - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "nothing beyond the width"
        raise InvalidInput(f"architecture {arch!r} takes no {', '.join(unknown)} (it takes {takes})")
    checked = {}
    for name, value in hyper.items():
        low, high = _BOUNDS[name]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise InvalidInput(f"{arch} {name} must be a whole number from {low} to {high}, got {value!r}")
        checked[name] = value
    return checked


def split_config(arch: str, config: Mapping[str, Any]) -> tuple[float, dict[str, int]]:
    """A trial's sampled config as (width multiplier, the family's other hyperparameters)."""
    width = config.get("width", 1.0)
    if isinstance(width, bool) or not isinstance(width, int | float):
        raise InvalidInput(f"width must be a number, got {width!r}")
    if not WIDTH_BOUNDS[0] <= width <= WIDTH_BOUNDS[1]:
        raise InvalidInput(f"width must be from {WIDTH_BOUNDS[0]} to {WIDTH_BOUNDS[1]}, got {width}")
    hyper = {name: value for name, value in config.items() if name != "width"}
    return float(width), check_hyperparameters(arch, hyper)


def check_space(arch: str, space: Mapping[str, Sequence[Any]] | None) -> dict[str, tuple[Any, ...]]:
    """The values to sample for ``arch``: the family's space, or ``space`` checked value by value."""
    if arch not in SPACES:
        raise InvalidInput(f"no search space for architecture {arch!r}; choose one of {sorted(SPACES)}")
    if space is None:
        return {name: tuple(values) for name, values in SPACES[arch].items()}
    chosen: dict[str, tuple[Any, ...]] = {}
    for name, values in space.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence) or not values:
            raise InvalidInput(f"search space {name!r} needs a non-empty list of values")
        if len(values) > 64:
            raise InvalidInput(f"search space {name!r} has {len(values)} values; at most 64")
        for value in values:
            split_config(arch, {name: value})
        chosen[name] = tuple(values)
    return chosen


def distinct_configs(
    space: Mapping[str, Sequence[Any]], count: int, seed: int, first: Sequence[Mapping[str, Any]] = ()
) -> list[dict[str, Any]]:
    """``first`` as given, then up to ``count`` in all drawn at random (seeded) from ``space`` without
    repeating one: plain random sampling of a few dozen configs from a space of a hundred tries some
    twice. Fewer than ``count`` when the space runs out; the search samples the rest as it likes."""
    rng = random.Random(seed)
    names = sorted(space)
    size = math.prod(len(space[name]) for name in names)
    chosen = [dict(config) for config in first]
    for _ in range(50 * count):
        if len(chosen) >= min(count, size + len(first)):
            break
        config = {name: rng.choice(list(space[name])) for name in names}
        if config not in chosen:
            chosen.append(config)
    return chosen[:count]


def describe(config: Mapping[str, Any]) -> str:
    """``width 0.5, depth 2, kernel 5, stride 2``: a config as people read it, in a stable order."""
    order = ("width", "depth", "kernel", "stride")
    names = sorted(config, key=lambda n: (order.index(n) if n in order else len(order), n))
    return ", ".join(f"{name} {config[name]:g}" for name in names)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)(?:i?[bB])?\s*$")
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_bytes(text: str, *, what: str = "size") -> int:
    """``64k``, ``1M``, ``256KiB`` or ``65536`` as bytes (k, M and G are powers of 1024)."""
    match = _SIZE.match(text)
    if match is None:
        raise InvalidInput(f"{what} {text!r} is not a size; write e.g. 65536, 64k or 1M")
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value < 1:
        raise InvalidInput(f"{what} {text!r} must be at least one byte")
    return int(value)


@dataclass(frozen=True)
class Budget:
    """What a model may take on each board, beyond what the board itself leaves for a model."""

    max_ram: int | None = None  # bytes: tensors + runtime
    max_flash: int | None = None  # bytes: model + runtime code
    max_latency_ms: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_ram", "max_flash", "max_latency_ms"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise InvalidInput(f"{name} must be positive, got {value}")

    def limits(self, board_ram: int, board_flash: int) -> tuple[int, int, float | None]:
        """(RAM, flash, latency) a model may take on a board leaving ``board_ram``/``board_flash``."""
        ram = board_ram if self.max_ram is None else min(board_ram, self.max_ram)
        flash = board_flash if self.max_flash is None else min(board_flash, self.max_flash)
        return ram, flash, self.max_latency_ms

    def as_dict(self) -> dict[str, Any]:
        return {"max_ram": self.max_ram, "max_flash": self.max_flash, "max_latency_ms": self.max_latency_ms}


def excess(
    figures: tuple[int | None, int | None, float | None], limits: tuple[int, int, float | None]
) -> tuple[float, list[str]]:
    """How far (RAM, flash, latency) are over ``limits``: the summed fractions over, and why."""
    total, reasons = 0.0, []
    for (value, limit), (name, unit) in zip(
        zip(figures, limits, strict=True), (("RAM", "B"), ("flash", "B"), ("latency", "ms")), strict=True
    ):
        if value is None or limit is None or value <= limit:
            continue
        total += value / limit - 1.0
        shown = f"{value:.2f} ms" if unit == "ms" else f"{value:,} B"
        limit_shown = f"{limit:.2f} ms" if unit == "ms" else f"{limit:,} B"
        reasons.append(f"{name} {shown} over {limit_shown}")
    return total, reasons


@dataclass(frozen=True)
class Estimate:
    """A lower bound on what an int8 build of a model needs on one board, from its Keras shape alone.

    Flash: one byte per weight plus the runtime's code; RAM: the largest input and output of one
    layer held at once plus the runtime's own; latency: every MAC at the fastest cycles per MAC.
    The real figures are larger (biases, scales, the graph, arena overhead), so a trial pruned on an
    estimate could never have fitted.
    """

    flash_bytes: int
    ram_bytes: int
    latency_ms: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"flash_bytes": self.flash_bytes, "ram_bytes": self.ram_bytes, "latency_ms": self.latency_ms}


def largest_activation_pair(layers: Iterable[tuple[int, int]]) -> int:
    """The most elements one layer holds at once: its input plus its output, over ``layers``."""
    return max((inputs + outputs for inputs, outputs in layers), default=0)


def estimate(
    params: int,
    activation_pair: int,
    macs: int,
    *,
    runtime_flash: int,
    runtime_ram: int,
    clock_mhz: float | None,
    cycles_per_mac: float,
) -> Estimate:
    """The lower bound described on ``Estimate``; no latency without a clock (a Linux board)."""
    latency = macs * cycles_per_mac / (clock_mhz * 1e3) if clock_mhz else None
    return Estimate(params + runtime_flash, activation_pair + runtime_ram, latency)


@dataclass(frozen=True)
class Point:
    """One measured trial on one board: its accuracy and one cost (RAM bytes or latency ms)."""

    key: int  # the trial's number
    accuracy: float
    cost: float


def pareto_front(points: Iterable[Point]) -> list[Point]:
    """The points no other point beats: none is at least as accurate and at most as costly, and
    better in one. Cheapest first; of points with equal figures the first (lowest key) stays."""
    ordered = sorted(points, key=lambda p: (p.cost, -p.accuracy, p.key))
    front: list[Point] = []
    for point in ordered:
        if front and point.accuracy <= front[-1].accuracy:
            continue
        front.append(point)
    return front


def closest(excesses: Mapping[int, float], count: int = 3) -> list[int]:
    """The ``count`` trials least over the budget (summed fractions over each limit), nearest first."""
    return [key for key, _ in sorted(excesses.items(), key=lambda item: (item[1], item[0]))[:count]]
