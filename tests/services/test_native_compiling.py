"""Compiling with the native compiler through the service, the CLI and the job parameters: the
module is checked bit-exact against TFLM on the snapshot's test split, built for the board's core
and run in QEMU, and its measured flash, RAM and instructions replace the catalog's estimates."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from typer.testing import CliRunner

from tinymlaas.cli.app import app
from tinymlaas.errors import InvalidInput
from tinymlaas.services import _keras_io
from tinymlaas.services.compiling import compile_module, module_package
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.models import show_model
from tinymlaas.services.squeezing import store_variant
from tinymlaas.settings import Settings
from tinymlaas.squeeze.convert import Quantization, convert
from tinymlaas.squeeze.variants import Evaluation, assess
from tinymlaas.storage.tables import ModelRow, TrainingRunRow
from tinymlaas.web.model_summaries import model_section

SEED = 3


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Context, dict[str, str]]:
    """A gestures snapshot, an untrained cnn for its windows, and its int8 and float32 variants."""
    import keras

    context = Context(Settings(data_dir=tmp_path_factory.mktemp("native") / "data"))
    datasets = DatasetService(context)
    datasets.generate("gestures", "gestures", samples=60, seed=1)
    snapshot = datasets.snapshot("gestures")
    loaded = datasets.load(snapshot, seed=SEED)
    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input(loaded.spec.input_shape),
            keras.layers.Conv1D(8, 3, activation="relu"),
            keras.layers.MaxPooling1D(2),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(len(loaded.spec.labels), activation="softmax"),
        ]
    )
    with context.session() as session:
        session.add(
            TrainingRunRow(
                id="run_native", snapshot_id=snapshot, recipe={"arch": "cnn1d", "epochs": 1, "seed": SEED},
                split_counts={}, history={}, metric_name="accuracy", metric_value=0.2, epochs_run=1,
                duration_s=0.1, confusion_matrix=None,
            )
        )  # fmt: skip
        session.flush()
        session.add(
            ModelRow(
                id="mdl_native", name="native", version=1, origin="trained", training_run_id="run_native",
                keras_blob=context.blobs.put(_keras_io.to_bytes(model)), arch="cnn1d", params=1,
                float_metric={"name": "accuracy", "value": 0.2},
            )
        )  # fmt: skip
    evaluation = Evaluation(loaded.spec.task, loaded.arrays.x_test, loaded.arrays.y_test)
    ids = {}
    for quantization in (Quantization.INT8, Quantization.FLOAT32):
        tflite = convert(model, quantization, loaded.arrays.x_train)
        squeezed = assess(tflite, evaluation, max_arena_bytes=256 * 1024)
        ids[quantization.value] = store_variant(context, "mdl_native", squeezed, snapshot)["id"]
    ids["test_samples"] = str(len(loaded.arrays.x_test))
    return context, ids


@pytest.fixture(scope="module")
def native(store: tuple[Context, dict[str, str]]) -> dict[str, Any]:
    context, ids = store
    return compile_module(context, ids["int8"], "nano33ble", compiler="native")


def test_native_module_is_measured_on_the_core_and_its_figures_replace_the_estimates(native) -> None:
    assert native["runtime"] == "native" and native["compiler"] == "native"
    assert native["fits"] and native["package"], native["reasons"]
    target = native["on_target"]
    assert target["core"] == "cortex-m4f" and target["machine"] == "mps2-an386"
    assert target["basis"] == "qemu-icount"
    assert target["instructions_min"] <= target["instructions"] <= target["instructions_max"]
    assert native["flash_bytes"] == target["flash_bytes"] > 0
    assert native["ram_bytes"] == target["static_ram_bytes"] + target["stack_bytes"]
    # Per-layer counts add up to the whole inference (the hooks' own cost is subtracted).
    assert sum(layer["instructions"] for layer in target["layers"]) == pytest.approx(
        target["instructions"], rel=0.02
    )
    assert [layer["op"] for layer in target["layers"]][:2] == ["EXPAND_DIMS", "CONV_2D"]


def test_latency_estimate_is_instructions_times_cpi_over_the_clock(native) -> None:
    target = native["on_target"]
    assert target["clock_mhz"] == 64
    expected = target["instructions"] * target["cpi"] / (64 * 1000.0)
    assert target["latency_ms"] == pytest.approx(expected)
    assert target["latency_low_ms"] < target["latency_ms"] < target["latency_high_ms"]
    assert "QEMU" in target["latency_basis"] and "estimate" in target["latency_basis"]
    assert target["cpi_source"]


def test_every_test_vector_was_compared_with_tflm(store, native) -> None:
    _, ids = store
    exact = native["on_target"]["bit_exact"]
    assert exact["reference"] == "tflm"
    assert exact["host_vectors"] == int(ids["test_samples"]) > 0
    assert 0 < exact["target_vectors"] <= exact["host_vectors"]


def test_package_holds_the_c_sources_and_tflms_self_test(store, native) -> None:
    context, _ = store
    archive = zipfile.ZipFile(io.BytesIO(module_package(context, native["id"])))
    names = set(archive.namelist())
    assert {"tmn_model.c", "tmn_model.h", "tmn_kernels.c", "model.tflite", "manifest.json"} <= names
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["runtime"] == "native" and manifest["target"]["instructions"] > 0
    assert manifest["selftest"]["runtime"] == "tflm" and manifest["selftest"]["inputs"]


def test_a_float_variant_is_refused_by_name_and_recorded(store) -> None:
    context, ids = store
    refused = compile_module(context, ids["float32"], "nano33ble", compiler="native")
    assert not refused["fits"] and refused["package"] is None
    assert "native compiler refused the model" in refused["reasons"][-1]


def test_boards_without_a_cortex_m_core_and_unknown_compilers_are_clear_errors(store) -> None:
    context, ids = store
    with pytest.raises(InvalidInput, match="esp32s3 does not run 'native'"):
        compile_module(context, ids["int8"], "esp32s3", compiler="native")
    with pytest.raises(InvalidInput, match="compiler: No compiler plugin named 'gcc'"):
        compile_module(context, ids["int8"], "nano33ble", compiler="gcc")
    with pytest.raises(InvalidInput, match="targets runtime 'native', not 'tflm'"):
        compile_module(context, ids["int8"], "nano33ble", compiler="native", runtime="tflm")


def test_cli_compile_native_json_prints_the_on_target_figures(store) -> None:
    context, ids = store
    base = ["--data-dir", str(context.settings.data_dir)]
    result = CliRunner().invoke(
        app, [*base, "compile", ids["int8"], "--board", "pico", "--compiler", "native", "--json"]
    )
    assert result.exit_code == 0, result.output
    module = json.loads(result.output)
    # The Cortex-M0+ build (ARMv6-M) runs on QEMU's Cortex-M3 machine.
    assert module["on_target"]["core"] == "cortex-m0plus"
    assert module["on_target"]["machine"] == "mps2-an385"
    assert module["on_target"]["latency_ms"] > 0
    table = CliRunner().invoke(
        app, [*base, "compile", ids["int8"], "--board", "nano33ble", "--runtime", "native"]
    )
    assert table.exit_code == 0, table.output
    assert "Instructions per layer" in table.output and "linker map" in table.output


def test_the_model_page_section_draws_instructions_per_layer(store, native) -> None:
    context, _ = store
    model = show_model(context, "mdl_native")
    section = model_section(model, {})
    # The page shows the latest module per variant and board (other tests compile again).
    shown = {t["board"]: t for t in section["targets"]}
    target = shown["nano33ble"]
    module = next(m for m in model.modules if m.id == target["module"])
    assert module.runtime == "native" and module.on_target
    layers = module.on_target["layers"]
    (bars,) = target["figure"]["data"]
    assert bars["y"] == [layer["instructions"] for layer in layers]
    assert bars["x"][1] == f"1 {layers[1]['op']}"
    assert "linker map" in target["basis"] and "QEMU" in target["summary"]
