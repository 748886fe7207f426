"""Does a module fit a board? Flash and RAM needed against what the board leaves for a model.

Flash = model bytes + the runtime's code (a documented per-core estimate from the catalog, plus
a per-operator kernel estimate). RAM = the arena the firmware reserves (the measured TFLM arena
plus its margin) + the runtime's own state; on a Linux-class board the model file is also held in
RAM. Every reason a module does not fit is listed, so the user sees all of them at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from tinymlaas.catalog.board import Board, BoardClass, RuntimeProfile
from tinymlaas.compilers.tflm import tensor_arena_size
from tinymlaas.squeeze.info import ModelInfo

__all__ = ["FitVerdict", "check_fit"]


@dataclass(frozen=True)
class FitVerdict:
    board: str
    runtime: str
    fits: bool
    flash_bytes: int
    ram_bytes: int | None  # None when the runtime cannot run the model at all
    reasons: tuple[str, ...]

    def as_dict(self) -> dict[str, object]:
        return {
            "board": self.board,
            "runtime": self.runtime,
            "fits": self.fits,
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "reasons": list(self.reasons),
        }


def _kib(n: int) -> str:
    return f"{n / 1024:.1f} KiB"


def _tensor_ram(runtime: RuntimeProfile, info: ModelInfo, arena_bytes: int | None) -> int | None:
    if runtime.id == "tflm":
        # What the generated firmware reserves: the measured arena plus its safety margin.
        return tensor_arena_size(arena_bytes) if arena_bytes is not None else None
    # LiteRT plans tensors much like TFLM; without a TFLM arena, fall back to the no-reuse bound.
    # fp16 weights are expanded to fp32 at load, so they also cost RAM there.
    tensors = arena_bytes if arena_bytes is not None else info.activation_bytes
    expanded = info.params * 4 if info.quantization == "float16" else 0
    return tensors + expanded


def _measured_fit(board: Board, runtime: RuntimeProfile, measured: tuple[int, int]) -> FitVerdict:
    flash, ram = measured
    reasons = []
    if flash > board.usable_flash_bytes:
        reasons.append(
            f"needs {_kib(flash)} of flash (the module as linked for {board.core}), "
            f"{board.name} leaves {_kib(board.usable_flash_bytes)} for a model"
        )
    if ram > board.usable_ram_bytes:
        reasons.append(
            f"needs {_kib(ram)} of RAM (static data and the peak stack measured in the running module), "
            f"{board.name} leaves {_kib(board.usable_ram_bytes)} for a model"
        )
    return FitVerdict(
        board=board.id,
        runtime=runtime.id,
        fits=not reasons,
        flash_bytes=flash,
        ram_bytes=ram,
        reasons=tuple(reasons),
    )


def check_fit(
    board: Board,
    runtime: RuntimeProfile,
    info: ModelInfo,
    *,
    arena_bytes: int | None,
    runtime_error: str | None,
    measured: tuple[int, int] | None = None,
) -> FitVerdict:
    """The verdict from the catalog's estimates, or from ``measured`` (flash, RAM) when the module
    was built for the board's core and run, which replaces every estimate."""
    if measured is not None:
        return _measured_fit(board, runtime, measured)
    reasons: list[str] = []
    if runtime.id not in board.runtimes:
        reasons.append(f"{board.name} does not run {runtime.id} (it runs {', '.join(board.runtimes)})")
    missing = runtime.unsupported(info.ops)
    if missing:
        reasons.append(f"{runtime.name} does not implement the ops {', '.join(missing)}")
    if runtime_error:
        reasons.append(runtime_error)
    footprint = runtime.footprint_for(board.core)
    flash = info.size_bytes + footprint.flash_bytes + footprint.per_op_flash_bytes * len(info.ops)
    if flash > board.usable_flash_bytes:
        reasons.append(
            f"needs {_kib(flash)} of flash (model {_kib(info.size_bytes)} + {runtime.id} runtime), "
            f"{board.name} leaves {_kib(board.usable_flash_bytes)} for a model"
        )
    tensors = None if runtime_error else _tensor_ram(runtime, info, arena_bytes)
    ram = None
    if tensors is not None:
        resident_model = info.size_bytes if board.board_class is BoardClass.LINUX else 0
        ram = tensors + footprint.ram_bytes + resident_model
        if ram > board.usable_ram_bytes:
            reasons.append(
                f"needs {_kib(ram)} of RAM (tensors {_kib(tensors)} + runtime {_kib(footprint.ram_bytes)}"
                f"{' + model ' + _kib(resident_model) if resident_model else ''}), "
                f"{board.name} leaves {_kib(board.usable_ram_bytes)} for a model"
            )
    elif not runtime_error:
        reasons.append(f"no tensor arena was measured, so RAM use on {board.name} is unknown")
    return FitVerdict(
        board=board.id,
        runtime=runtime.id,
        fits=not reasons,
        flash_bytes=flash,
        ram_bytes=ram,
        reasons=tuple(reasons),
    )
