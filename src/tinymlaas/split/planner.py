"""The split planner: every valid cut of an int8 model between a device and the node behind it, costed.

For each cut the device runs the head, the cut tensor crosses the link in a CoAP message, and the
next node runs the tail. Each of the three parts is costed from the best source there is, and every
figure carries that source in a sentence:

- compute on a Cortex-M board the native compiler builds for: the whole model is cross-built and run
  once in QEMU, and a part costs the instructions counted for its own layers (plus the invoke's fixed
  overhead) × the core's cycles per instruction ÷ the board's clock, with the CPI range;
- compute on another microcontroller: multiply-accumulates × an assumed cycles-per-MAC figure, marked
  as a rough estimate;
- compute on a Linux-class node: the part itself run in LiteRT on this host (median of several runs),
  marked as measured on the emulating host, not on the board;
- transfer: ``split.transfer``'s model of a Block1 exchange over the link profile.

- device energy, where the board file gives power figures with their source: CPU power × the head's
  time plus radio power × the time the message's bytes are on the air.

The objective is end-to-end latency (or device energy), subject to the head fitting the device; the
two extremes (all offloaded, all on the device) are always among the candidates so the choice is
judged against both.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinymlaas.catalog.board import Board, BoardClass
from tinymlaas.catalog.cores import core_timing, estimate_ms
from tinymlaas.catalog.loader import Catalog
from tinymlaas.compilers.fit import check_fit
from tinymlaas.compilers.native import compile_tflite, memory_plan
from tinymlaas.compilers.native.armbuild import CORES
from tinymlaas.compilers.native.qemu import measure_on_qemu, toolchain_problem
from tinymlaas.errors import InvalidInput, TinymlaasError
from tinymlaas.lwm2m.linkemu import PROFILES, LinkProfile, link_profile
from tinymlaas.split.cuts import Cut, CutSearch, find_cuts, split_model
from tinymlaas.split.transfer import TransferEstimate, predict_transfer
from tinymlaas.split.wire import HopMessage, HopTiming, encode
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.squeeze.runtimes import litert_host_times_ms

__all__ = [
    "OBJECTIVES",
    "Chain",
    "CutFigures",
    "Energy",
    "Figure",
    "SplitPlan",
    "parse_chain",
    "plan_split",
]

# A rough cycles-per-MAC figure for int8 kernels on a microcontroller the native compiler does not
# build for (e.g. Xtensa): TFLM's optimised kernels reach about 1-2 cycles per MAC on cores with SIMD,
# reference kernels 5-10; 4 is in between, and the range says how little it is worth.
CYCLES_PER_MAC = 4.0
CYCLES_PER_MAC_RANGE = (1.0, 10.0)
OBJECTIVES = ("latency", "energy")
# LiteRT runs of one part on this host; the median is kept.
HOST_RUNS = 15
# Random int8 inputs run in QEMU for the per-layer counts (counts barely depend on the data).
QEMU_VECTORS = 2

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


@dataclass(frozen=True)
class Chain:
    """A device, the link to the next node, and that node."""

    device: Board
    link: LinkProfile
    remote: Board

    @property
    def spec(self) -> str:
        return f"{self.device.id}:{self.link.name}:{self.remote.id}"


def parse_chain(text: str, catalog: Catalog) -> Chain:
    """``device:link:node``, e.g. ``nano33ble:ble:rpi4``; links are the fleet emulation's profiles."""
    parts = [part.strip() for part in text.split(":")]
    if len(parts) < 3 or len(parts) % 2 == 0 or not all(parts):
        raise InvalidInput(
            f"A chain is device:link:node (e.g. nano33ble:ble:rpi4), got {text!r}; "
            f"links: {', '.join(PROFILES)}"
        )
    if len(parts) > 3:
        raise InvalidInput(
            f"The planner cuts a model between the first two nodes of a chain; {text!r} has "
            f"{len(parts) // 2 + 1}. Chain more stages with a pipeline (tinymlaas pipelines)."
        )
    device, link_name, remote = parts
    link = link_profile(link_name)
    if link is None:  # pragma: no cover - a non-empty name always gives a profile or an error
        raise InvalidInput(f"Unknown link {link_name!r}")
    return Chain(catalog.board(device), link, catalog.board(remote))


@dataclass(frozen=True)
class Figure:
    """One time in milliseconds with its range and where it comes from."""

    ms: float
    low_ms: float
    high_ms: float
    basis: str

    def as_dict(self) -> dict[str, Any]:
        return {"ms": self.ms, "low_ms": self.low_ms, "high_ms": self.high_ms, "basis": self.basis}


_NOTHING = Figure(0.0, 0.0, 0.0, "nothing runs there at this cut")


@dataclass(frozen=True)
class Energy:
    """The device's energy for one inference and its message, in millijoules, with its basis."""

    mj: float
    low_mj: float
    high_mj: float
    basis: str

    def as_dict(self) -> dict[str, Any]:
        return {"mj": self.mj, "low_mj": self.low_mj, "high_mj": self.high_mj, "basis": self.basis}


def device_energy(
    board: Board, device: Figure, transfer: TransferEstimate, link: LinkProfile
) -> Energy | None:
    """CPU power × the head's time, plus radio power × the time the message's bytes are on the air.

    None when the board file gives no power figures. Idle listening between exchanges, connection
    events and the board's other parts are not counted, so this is a floor.
    """
    power = board.power_mw
    if not power:
        return None
    up_s = transfer.uplink_bytes * 8 / link.bandwidth_bps
    down_s = transfer.downlink_bytes * 8 / link.bandwidth_bps
    radio_mj = up_s * power["radio_tx_mw"] + down_s * power["radio_rx_mw"]
    cpu = power["cpu_active_mw"] / 1000.0  # mJ per ms
    return Energy(
        device.ms * cpu + radio_mj,
        device.low_ms * cpu + radio_mj,
        device.high_ms * cpu + radio_mj,
        f"estimate: {power['cpu_active_mw']:g} mW × the head's time + {power['radio_tx_mw']:g} mW × "
        f"{up_s * 1000:.2f} ms transmitting + {power['radio_rx_mw']:g} mW × {down_s * 1000:.2f} ms receiving "
        f"({board.sources.get('power', '').split(',')[0]}); idle listening not counted",
    )


@dataclass(frozen=True)
class CutFigures:
    """One candidate: the cut, what the head needs on the device, and the three times."""

    cut: Cut
    fits: bool
    reasons: tuple[str, ...]
    head_flash_bytes: int
    head_ram_bytes: int
    payload_bytes: int
    device: Figure
    transfer: Figure
    remote: Figure
    energy: Energy | None = None

    @property
    def total_ms(self) -> float:
        return self.device.ms + self.transfer.ms + self.remote.ms

    def as_dict(self) -> dict[str, Any]:
        cut = self.cut
        return {
            "index": cut.index,
            "label": cut.label,
            "tensor": cut.tensor,
            "shape": list(cut.shape),
            "scale": cut.scale,
            "zero_point": cut.zero_point,
            "tensor_bytes": cut.nbytes,
            "head_ops": len(cut.head_ops),
            "tail_ops": len(cut.tail_ops),
            "head_macs": cut.head_macs,
            "tail_macs": cut.tail_macs,
            "fits": self.fits,
            "reasons": list(self.reasons),
            "head_flash_bytes": self.head_flash_bytes,
            "head_ram_bytes": self.head_ram_bytes,
            "payload_bytes": self.payload_bytes,
            "device": self.device.as_dict(),
            "transfer": self.transfer.as_dict(),
            "remote": self.remote.as_dict(),
            "total_ms": self.total_ms,
            "device_energy": self.energy.as_dict() if self.energy is not None else None,
        }


@dataclass(frozen=True)
class SplitPlan:
    """Every candidate, the choice (None when no cut fits the device) and what was skipped."""

    chain: Chain
    objective: str
    operators: int
    candidates: tuple[CutFigures, ...]
    chosen: int | None  # the chosen cut's index (operators in its head)
    skipped: tuple[tuple[int, int], ...]  # (cut index, tensors crossing) for cuts not offered
    notes: tuple[str, ...] = field(default=())

    def candidate(self, index: int) -> CutFigures:
        for figures in self.candidates:
            if figures.cut.index == index:
                return figures
        valid = ", ".join(str(f.cut.index) for f in self.candidates)
        raise InvalidInput(f"Cut {index} is not a valid cut of this model; valid cuts: {valid}")

    @property
    def best(self) -> CutFigures | None:
        return self.candidate(self.chosen) if self.chosen is not None else None

    @property
    def extremes(self) -> tuple[CutFigures, CutFigures]:
        return self.candidates[0], self.candidates[-1]

    @property
    def speedup(self) -> float | None:
        """The chosen cut's end-to-end time against the slower extreme that fits (or the offload)."""
        best = self.best
        if best is None or best.total_ms <= 0:
            return None
        extremes = [e for e in self.extremes if e.fits]
        return max(e.total_ms for e in extremes) / best.total_ms if extremes else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "chain": self.chain.spec,
            "device": self.chain.device.id,
            "link": self.chain.link.name,
            "remote": self.chain.remote.id,
            "objective": self.objective,
            "operators": self.operators,
            "chosen": self.chosen,
            "speedup_vs_worse_extreme": self.speedup,
            "skipped": [{"index": i, "tensors_crossing": n} for i, n in self.skipped],
            "notes": list(self.notes),
            "candidates": [c.as_dict() for c in self.candidates],
        }


class _QemuTimer:
    """Per-layer instruction counts of the whole model on one core, summed over a part's layers."""

    def __init__(self, tflite: bytes, board: Board, progress: Progress) -> None:
        self._board = board
        info = inspect_tflite(tflite)
        size = math.prod(info.inputs[0].shape)
        rng = np.random.default_rng(0)
        vectors = [rng.integers(-128, 128, size, dtype=np.int8).tobytes() for _ in range(QEMU_VECTORS)]
        progress(f"counting instructions per layer in QEMU ({board.core})")
        measured = measure_on_qemu(compile_tflite(tflite), vectors, core=board.core)
        self._layers = measured.layer_instructions
        self._overhead = max(0, measured.instructions - sum(self._layers))
        self._machine = CORES[board.core].machine

    def figure(self, start: int, stop: int) -> Figure:
        if start >= stop:
            return _NOTHING
        instructions = sum(self._layers[start:stop]) + self._overhead
        board = self._board
        estimate = estimate_ms(instructions, board.core, board.clock_mhz)
        timing = core_timing(board.core)
        if estimate is None or timing is None:
            raise InvalidInput(f"No cycles-per-instruction figures for core {board.core!r}")
        ms, low, high = estimate
        return Figure(
            ms,
            low,
            high,
            f"estimate: {instructions:,} instructions for layers {start}..{stop - 1} counted in QEMU "
            f"{self._machine} ({board.core} build) × {timing.cpi:g} cycles per instruction "
            f"({timing.cpi_low:g}–{timing.cpi_high:g}) ÷ {board.clock_mhz:g} MHz",
        )


class _MacTimer:
    """A microcontroller with no native build: MACs × an assumed cycles-per-MAC figure."""

    def __init__(self, board: Board) -> None:
        self._board = board

    def part(self, macs: int, what: str) -> Figure:
        if macs <= 0:
            return _NOTHING
        per_ms = self._board.clock_mhz * 1e3
        low, high = CYCLES_PER_MAC_RANGE
        return Figure(
            macs * CYCLES_PER_MAC / per_ms,
            macs * low / per_ms,
            macs * high / per_ms,
            f"rough MAC-based estimate: {macs:,} MACs of the {what} × {CYCLES_PER_MAC:g} cycles per MAC "
            f"({low:g}–{high:g}) ÷ {self._board.clock_mhz:g} MHz; no instruction count for "
            f"{self._board.core}",
        )


def _host_figure(part: bytes | None, board: Board, what: str) -> Figure:
    """The part run in LiteRT on this host, as the emulated node runs it."""
    if part is None:
        return _NOTHING
    times = litert_host_times_ms(part, HOST_RUNS)
    return Figure(
        statistics.median(times),
        min(times),
        max(times),
        f"measured: the {what} in LiteRT on the emulating host (median of {HOST_RUNS} runs), "
        f"not on a {board.id}",
    )


def _payload_bytes(cut: Cut) -> int:
    """The encoded hop message carrying this cut's tensor, with a typical header and one hop."""
    message = HopMessage(
        pipeline="p" * 16,
        stage="s" * 16,
        seq=1_000_000,
        origin="e" * 16,
        created_at_ms=1.7e12,
        tensor=bytes(cut.nbytes),
        shape=cut.shape,
        scale=cut.scale,
        zero_point=cut.zero_point,
        hops=(HopTiming(node="e" * 16, compute_ms=12.5, sent_at_ms=1.7e12),),
    )
    return len(encode(message))


class _Planner:
    def __init__(self, tflite: bytes, chain: Chain, catalog: Catalog, progress: Progress) -> None:
        self.tflite = tflite
        self.chain = chain
        self.catalog = catalog
        self.progress = progress
        self.notes: list[str] = []
        self.device_timer = self._mcu_timer(chain.device)
        self.remote_timer = self._mcu_timer(chain.remote) if chain.remote is not chain.device else None

    def _mcu_timer(self, board: Board) -> _QemuTimer | _MacTimer | None:
        if board.board_class is not BoardClass.MCU:
            return None
        if board.core in CORES and "native" in board.runtimes:
            problem = toolchain_problem()
            if problem is None:
                try:
                    return _QemuTimer(self.tflite, board, self.progress)
                except TinymlaasError as exc:
                    self.notes.append(
                        f"{board.id}: the native build could not count instructions ({exc.detail}); "
                        "MAC-based estimates instead"
                    )
            else:
                self.notes.append(f"{board.id}: {problem}; MAC-based estimates instead")
        return _MacTimer(board)

    def compute(self, board: Board, timer: Any, cut: Cut, part: bytes | None, head: bool) -> Figure:
        what = "head" if head else "tail"
        if part is None:
            return _NOTHING
        start, stop = (0, cut.index) if head else (cut.index, cut.index + len(cut.tail_ops))
        if isinstance(timer, _QemuTimer):
            return timer.figure(start, stop)
        if isinstance(timer, _MacTimer):
            return timer.part(cut.head_macs if head else cut.tail_macs, what)
        return _host_figure(part, board, what)

    def head_fit(self, cut: Cut, head: bytes | None) -> tuple[bool, tuple[str, ...], int, int]:
        device = self.chain.device
        if head is None:
            return True, (), 0, 0
        info = inspect_tflite(head)
        if device.board_class is BoardClass.MCU and "native" in device.runtimes:
            runtime = self.catalog.runtime("native")
            try:
                plan = memory_plan(head)
            except TinymlaasError as exc:
                return False, (f"the native compiler refuses the head: {exc.detail}",), 0, 0
            tensors = plan.scratch_bytes + math.prod(info.inputs[0].shape) + math.prod(info.outputs[0].shape)
            verdict = check_fit(device, runtime, info, arena_bytes=tensors, runtime_error=None)
        else:
            runtime = self.catalog.runtime(device.runtimes[0])
            verdict = check_fit(device, runtime, info, arena_bytes=None, runtime_error=None)
        return verdict.fits, verdict.reasons, verdict.flash_bytes, verdict.ram_bytes or 0

    def figures(self, cut: Cut) -> CutFigures:
        head, tail = split_model(self.tflite, cut.index)
        fits, reasons, flash, ram = self.head_fit(cut, head)
        payload = _payload_bytes(cut)
        transfer = predict_transfer(payload, self.chain.link)
        device = self.compute(self.chain.device, self.device_timer, cut, head, head=True)
        return CutFigures(
            cut=cut,
            fits=fits,
            reasons=reasons,
            head_flash_bytes=flash,
            head_ram_bytes=ram,
            payload_bytes=payload,
            device=device,
            transfer=Figure(
                transfer.arrival_seconds * 1000,
                transfer.arrival_seconds * 1000,
                transfer.arrival_seconds * 1000,
                f"{transfer.basis}; counted until the last block arrives",
            ),
            remote=self.compute(self.chain.remote, self.remote_timer, cut, tail, head=False),
            energy=device_energy(self.chain.device, device, transfer, self.chain.link),
        )


def plan_split(
    tflite: bytes,
    chain: Chain,
    catalog: Catalog,
    *,
    objective: str = "latency",
    progress: Progress = _quiet,
) -> SplitPlan:
    """Cost every valid cut of ``tflite`` on ``chain`` and choose, among the cuts whose head fits, the
    one with the least end-to-end latency (``latency``) or device energy (``energy``)."""
    if objective not in OBJECTIVES:
        raise InvalidInput(f"Unknown objective {objective!r}; choose one of: {', '.join(OBJECTIVES)}")
    if objective == "energy" and not chain.device.power_mw:
        raise InvalidInput(
            f"No source gives power figures for {chain.device.name}, so its energy cannot be computed; "
            "use --objective latency, or add a [power] table with its source to the board file"
        )
    search: CutSearch = find_cuts(tflite)
    planner = _Planner(tflite, chain, catalog, progress)
    candidates = []
    for cut in search.cuts:
        progress(f"cut {cut.index} of {search.operators}: {cut.label}")
        candidates.append(planner.figures(cut))
    fitting = [c for c in candidates if c.fits]

    def cost(c: CutFigures) -> float:
        return c.energy.mj if objective == "energy" and c.energy is not None else c.total_ms

    chosen = min(fitting, key=lambda c: (cost(c), -c.cut.index)).cut.index if fitting else None
    notes = list(planner.notes)
    if search.skipped:
        notes.append(
            f"{len(search.skipped)} cut(s) not offered: several tensors cross there (a branch of the model)"
        )
    if chosen is None:
        notes.append(f"No cut fits {chain.device.name}: every candidate's reasons are listed")
    return SplitPlan(
        chain=chain,
        objective=objective,
        operators=search.operators,
        candidates=tuple(candidates),
        chosen=chosen,
        skipped=search.skipped,
        notes=tuple(notes),
    )
