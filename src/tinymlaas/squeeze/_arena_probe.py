"""Child process for the arena search: load a model in TFLM with one arena size and invoke once.

Run as ``python -m tinymlaas.squeeze._arena_probe MODEL_PATH ARENA_BYTES``. Exit 0 on success
(printing TFLM's allocation report), 1 when TFLM refuses; a crash shows as a signal. It lives in
its own process because a too-small arena can take the whole interpreter down.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from tflite_micro import runtime as tflm


def main() -> int:
    model = Path(sys.argv[1]).read_bytes()
    arena = int(sys.argv[2])
    try:
        interpreter = tflm.Interpreter.from_bytes(model, arena_size=arena)
        details = interpreter.get_input_details(0)
        interpreter.set_input(np.zeros(details["shape"], dtype=details["dtype"]), 0)
        interpreter.invoke()
    except (RuntimeError, ValueError) as exc:
        print(f"TFLM refused: {exc}", file=sys.stderr)
        return 1
    sys.stdout.flush()
    interpreter.print_allocations()
    return 0


if __name__ == "__main__":
    sys.exit(main())
