"""Zoo models end to end: bit-exact with TFLM, a smaller memory plan, float API, Cortex-M4F build."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tflite_micro")

from tflite_micro import runtime as tflm

from tinymlaas.compilers.native import HostModule, compile_tflite, memory_plan
from tinymlaas.data.scaling import InputScaling, ScalingMethod
from tinymlaas.data.types import DatasetSpec, SampleKind, Task
from tinymlaas.squeeze.arena import _Prober
from tinymlaas.squeeze.convert import Quantization, convert
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.squeeze.runtimes import TflmRunner
from tinymlaas.training import zoo

SPECS = {
    "dense": ("dense", DatasetSpec(Task.CLASSIFICATION, SampleKind.VECTOR, (13,), ("a", "b", "c"))),
    "cnn1d": (
        "cnn1d",
        DatasetSpec(Task.CLASSIFICATION, SampleKind.TIMESERIES, (64, 3), ("a", "b", "c", "d")),
    ),
    "cnn2d": ("cnn2d", DatasetSpec(Task.CLASSIFICATION, SampleKind.IMAGE, (28, 28, 1), tuple("abcdefghij"))),
    "mobilenet": (
        "mobilenet",
        DatasetSpec(Task.CLASSIFICATION, SampleKind.IMAGE, (64, 64, 1), ("a", "b", "c")),
    ),
    "dense_regression": ("dense", DatasetSpec(Task.REGRESSION, SampleKind.VECTOR, (13,), ())),
}
VECTORS = 64


def _zoo_tflite(arch: str, spec: DatasetSpec) -> bytes:
    model = zoo.build(arch, spec)
    # Untrained logits are nearly constant; TFLM's softmax refuses an input scale that small, so
    # widen the last layer as training would.
    rng = np.random.default_rng(1)
    for layer in model.layers:
        if getattr(layer, "use_bias", False) and getattr(layer, "bias", None) is not None:
            layer.bias.assign(
                rng.normal(0, 0.2, size=layer.bias.shape).astype(np.float32)
            )  # zeros get dropped
    last = [layer for layer in model.layers if layer.get_weights()][-1]
    kernel, *rest = last.get_weights()
    last.set_weights([kernel * 1000, *rest])
    representative = np.random.default_rng(0).normal(size=(32, *spec.input_shape)).astype(np.float32)
    return convert(model, Quantization.INT8, representative)


@pytest.fixture(scope="module")
def zoo_models() -> dict[str, bytes]:
    return {name: _zoo_tflite(arch, spec) for name, (arch, spec) in SPECS.items()}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_zoo_bit_exact(zoo_models: dict[str, bytes], name: str) -> None:
    tflite = zoo_models[name]
    module = HostModule(compile_tflite(tflite, title=name))
    interpreter = tflm.Interpreter.from_bytes(tflite, arena_size=1 << 20)
    shape = tuple(interpreter.get_input_details(0)["shape"])
    rng = np.random.default_rng(7)
    for i in range(VECTORS):
        x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        interpreter.set_input(x, 0)
        interpreter.invoke()
        expected = np.array(interpreter.get_output(0)).reshape(-1)
        assert np.array_equal(expected, module.run(x)), f"{name}: vector {i} differs"


@pytest.mark.parametrize("name", sorted(SPECS))
def test_memory_plan_beats_tflm_arena(zoo_models: dict[str, bytes], name: str, tmp_path: Path) -> None:
    tflite = zoo_models[name]
    compiled = memory_plan(tflite)
    plan = compiled.plan
    # The greedy plan reaches the lower bound: the most bytes live at any one layer.
    assert plan.scratch_bytes == plan.live_peak()
    path = tmp_path / "model.tflite"
    path.write_bytes(tflite)
    prober = _Prober(path)
    assert prober.ok(1 << 20)
    assert prober.reported_total is not None
    assert compiled.scratch_bytes < prober.reported_total
    print(f"{name}: scratch {compiled.scratch_bytes} B, TFLM arena {prober.reported_total} B")


def test_memory_plan_json_and_determinism(zoo_models: dict[str, bytes]) -> None:
    tflite = zoo_models["cnn1d"]
    files = compile_tflite(tflite, title="cnn1d")
    assert files == compile_tflite(tflite, title="cnn1d")
    assert files["model.tflite"] == tflite
    document = json.loads(files["memory_plan.json"])
    assert document["scratch_bytes"] == memory_plan(tflite).scratch_bytes
    assert [layer["op"] for layer in document["layers"]][:2] == ["EXPAND_DIMS", "CONV_2D"]
    assert any(t["shares_with"] is not None for t in document["tensors"])  # reshapes alias
    assert sum(layer["macs"] for layer in document["layers"]) > 0
    header = files["tmn_model.h"].decode()
    assert "#define TMN_SCRATCH_BYTES" in header and "int tmn_invoke(const int8_t *input" in header
    assert "sha256" in files["tmn_model.c"].decode()


def test_infer_matches_tflm_runner(zoo_models: dict[str, bytes]) -> None:
    tflite = zoo_models["cnn1d"]
    scaling = InputScaling(ScalingMethod.STANDARDIZE, offset=(0.5, -1.25, 3.0), scale=(2.0, 0.75, 1.5))
    module = HostModule(compile_tflite(tflite, scaling=scaling))
    info = inspect_tflite(tflite)
    runner = TflmRunner(tflite, info.inputs[0], info.outputs[0], arena_bytes=1 << 20, scaling=scaling)
    rng = np.random.default_rng(3)
    for _ in range(16):
        raw = rng.normal(1.0, 3.0, size=(64, 3)).astype(np.float32)
        np.testing.assert_array_equal(module.infer(raw), runner.run(raw).reshape(-1))


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="no arm-none-eabi-gcc")
def test_compiles_warning_free_for_cortex_m4f(zoo_models: dict[str, bytes], tmp_path: Path) -> None:
    files = compile_tflite(zoo_models["mobilenet"])
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    sources = sorted(name for name in files if name.endswith(".c"))
    flags = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16"]
    flags += ["-mfloat-abi=hard", "-mthumb", "-Os", "-c"]
    for source in sources:
        done = subprocess.run(
            ["arm-none-eabi-gcc", *flags, source, "-o", f"{source}.o"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
