import subprocess
import sys

from tinymlaas.squeeze.arena import GRANULARITY, measure_arena


def _runs(tmp_path, model: bytes, arena: int) -> bool:
    path = tmp_path / "m.tflite"
    path.write_bytes(model)
    proc = subprocess.run(
        [sys.executable, "-m", "tinymlaas.squeeze._arena_probe", str(path), str(arena)],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def test_found_arena_is_minimal_in_tflm(tiny_models, tmp_path):
    result = measure_arena(tiny_models.int8, max_bytes=1 << 20)
    assert result.error is None and result.arena_bytes is not None
    assert result.arena_bytes % GRANULARITY == 0
    assert _runs(tmp_path, tiny_models.int8, result.arena_bytes)
    assert not _runs(tmp_path, tiny_models.int8, result.arena_bytes - GRANULARITY)


def test_float32_needs_more_arena_than_int8(tiny_models):
    f32 = measure_arena(tiny_models.float32, max_bytes=1 << 20).arena_bytes
    i8 = measure_arena(tiny_models.int8, max_bytes=1 << 20).arena_bytes
    assert f32 is not None and i8 is not None and f32 > i8


def test_float16_weights_are_reported_as_unrunnable_in_tflm(tiny_models):
    result = measure_arena(tiny_models.float16, max_bytes=1 << 20)
    assert result.arena_bytes is None
    assert "DEQUANTIZE" in result.error
