"""Find the smallest tensor arena a model runs in, by asking the TFLM runtime itself.

TFLM has no "arena used" getter that we can trust across kernels, so the figure comes from a
search: each try loads the model with one arena size and invokes it once, in a child process
(a too-small arena can crash the interpreter). TFLM's own allocation report gives the starting
guess, which usually brackets the answer in three or four tries.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ArenaResult", "generous_arena", "measure_arena"]

GRANULARITY = 16  # bytes; TFLM aligns arena allocations to 16
_REPORTED_TOTAL = re.compile(r"Arena allocation total (\d+) bytes")
_PROBE_TIMEOUT_S = 120


@dataclass(frozen=True)
class ArenaResult:
    """The minimal arena in bytes, or why TFLM cannot run the model at any arena size."""

    arena_bytes: int | None
    error: str | None
    tries: int


def _round_up(n: int) -> int:
    return -(-n // GRANULARITY) * GRANULARITY


class _Prober:
    def __init__(self, model_path: Path) -> None:
        self.model_path = model_path
        self.tries = 0
        self.last_error = ""
        self.reported_total: int | None = None

    def ok(self, arena: int) -> bool:
        self.tries += 1
        proc = subprocess.run(
            [sys.executable, "-m", "tinymlaas.squeeze._arena_probe", str(self.model_path), str(arena)],
            capture_output=True,
            text=True,
            timeout=_PROBE_TIMEOUT_S,
            check=False,
        )
        if proc.returncode == 0:
            match = _REPORTED_TOTAL.search(proc.stdout + proc.stderr)
            self.reported_total = int(match.group(1)) if match else None
            return True
        self.last_error = _summarize(proc.stderr, proc.returncode)
        return False


_PREPARE_FAILED = re.compile(r"Node (\w+) \(number (\d+)\) failed to prepare")
_CHECK_FAILED = re.compile(r"\S+\.cc:\d+ (.+) was not true")


def _summarize(stderr: str, returncode: int) -> str:
    """One readable sentence from TFLM's log: which kernel refused the model and which check failed."""
    prepare = _PREPARE_FAILED.search(stderr)
    if prepare:
        check = _CHECK_FAILED.search(stderr)
        detail = f": {check.group(1)} does not hold" if check else ""
        return f"its {prepare.group(1)} kernel (node {prepare.group(2)}) failed to prepare{detail}"
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    if returncode < 0 or not lines:
        return f"the TFLM process died (exit code {returncode})"
    return lines[-2] if len(lines) > 1 and lines[-1].startswith("TFLM refused") else lines[-1]


def _bisect(prober: _Prober, lo: int, hi: int) -> int:
    """Smallest size in (lo, hi] that works, given lo fails (or is 0) and hi works."""
    while hi - lo > GRANULARITY:
        mid = _round_up((lo + hi) // 2)
        if mid >= hi:
            break
        if prober.ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _bracket(prober: _Prober, hi: int) -> tuple[int, int]:
    """Narrow (lo, hi] around the answer from TFLM's reported total, in strides that double.

    ``prober`` has already seen ``hi`` work; returns a size known to fail (or 0) and one known to
    work. The report is usually exact, sometimes a little under (alignment, scratch buffers).
    """
    step = 16 * GRANULARITY
    hint = _round_up(prober.reported_total or hi)
    if hint >= hi or prober.ok(hint):
        top = min(hint, hi)
        lo = max(0, top - step)
        while lo and prober.ok(lo):
            top, step = lo, step * 2
            lo = max(0, top - step)
        return lo, top
    lo = hint
    while lo + step < hi:
        if prober.ok(lo + step):
            return lo, lo + step
        lo, step = lo + step, step * 2
    return lo, hi


def generous_arena(tflite: bytes, max_bytes: int) -> int:
    """An arena most small models run in: the search's first try, and enough for a one-off run."""
    return _round_up(min(max(64 * 1024, 4 * len(tflite)), max_bytes))


def measure_arena(tflite: bytes, *, max_bytes: int) -> ArenaResult:
    """Search the minimal arena (to ``GRANULARITY`` bytes) with which TFLM allocates and invokes."""
    with tempfile.TemporaryDirectory(prefix="tinymlaas-arena-") as tmp:
        path = Path(tmp) / "model.tflite"
        path.write_bytes(tflite)
        prober = _Prober(path)
        hi = generous_arena(tflite, max_bytes)
        if not prober.ok(hi):
            hi = _round_up(max_bytes)
            if not prober.ok(hi):
                return ArenaResult(None, prober.last_error, prober.tries)
        lo, hi = _bracket(prober, hi)
        return ArenaResult(_bisect(prober, lo, hi), None, prober.tries)
