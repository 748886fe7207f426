"""The acceptance journey: gestures through the whole offline lifecycle on three boards."""

import io
import json
import zipfile

import pytest


@pytest.fixture(scope="module")
def report(module_cli):
    boards = {b["id"] for b in module_cli.json("boards", "list")}
    assert {"nano33ble", "pico", "rpi4"} <= boards
    module_cli("datasets", "create", "gestures", "--generator", "gestures")
    return module_cli.json("lifecycle", "run", "--dataset", "gestures", "--boards", "nano33ble,pico,rpi4")


def _row(report, board, quantization):
    return next(r for r in report["variants"] if r["board"] == board and r["quantization"] == quantization)


def test_report_shape(report):
    assert set(report) >= {"dataset", "snapshot", "model", "float_metric", "variants", "timings_s"}
    assert report["float_metric"]["name"] == "accuracy"
    assert set(report["timings_s"]) == {"snapshot", "train", "squeeze", "compile"}
    # 3 boards x 3 quantizations, and the int8 variant once more as a native module for each
    # Cortex-M board (nano33ble, pico).
    assert len(report["variants"]) == 11
    native = [(r["board"], r["quantization"]) for r in report["variants"] if r["runtime"] == "native"]
    assert native == [("nano33ble", "int8"), ("pico", "int8")]
    for row in report["variants"]:
        assert set(row) >= {
            "board",
            "quantization",
            "runtime",
            "module",
            "size_bytes",
            "arena_bytes",
            "flash_bytes",
            "ram_bytes",
            "metric",
            "fits",
            "reasons",
        }


def test_int8_in_tflm_is_within_two_points_of_float_and_a_third_of_the_size(report):
    float_acc = report["float_metric"]["value"]
    assert float_acc >= 0.85
    for board in ("nano33ble", "pico"):
        int8 = _row(report, board, "int8")
        assert int8["runtime"] == "tflm"
        assert abs(int8["metric"]["value"] - float_acc) <= 0.02
        assert int8["size_bytes"] <= 0.35 * _row(report, board, "float32")["size_bytes"]


def test_figures_are_consistent_with_the_fit_verdicts(report, module_cli):
    boards = {b["id"]: b for b in module_cli.json("boards", "list")}
    for row in report["variants"]:
        board = boards[row["board"]]
        if row["fits"]:
            assert row["reasons"] == []
            assert row["arena_bytes"] or row["runtime"] == "litert"
            if row["runtime"] == "native":
                # The linked image: weights without the flatbuffer's own bytes, kernels, no interpreter.
                assert (
                    0 < row["flash_bytes"] == row["on_target"]["flash_bytes"] <= board["usable_flash_bytes"]
                )
            else:
                assert row["size_bytes"] < row["flash_bytes"] <= board["usable_flash_bytes"]
            assert row["ram_bytes"] <= board["usable_ram_bytes"]
            if row["runtime"] == "tflm":
                assert row["ram_bytes"] > row["arena_bytes"]
        else:
            assert row["reasons"]


def test_native_rows_carry_on_target_figures_and_tflms_metric(report):
    for board, core in (("nano33ble", "cortex-m4f"), ("pico", "cortex-m0plus")):
        tflm = _row(report, board, "int8")
        native = next(r for r in report["variants"] if r["board"] == board and r["runtime"] == "native")
        assert native["variant"] == tflm["variant"] and native["metric"] == tflm["metric"]
        target = native["on_target"]
        assert target["core"] == core and target["instructions"] > 0 and target["latency_ms"] > 0
        assert native["ram_bytes"] == target["static_ram_bytes"] + target["stack_bytes"] < tflm["ram_bytes"]


def test_float16_is_refused_on_tflm_boards_with_the_reason(report):
    row = _row(report, "pico", "float16")
    assert not row["fits"] and row["metric"] is None
    assert any("DEQUANTIZE" in reason for reason in row["reasons"])
    assert _row(report, "rpi4", "float16")["fits"]


def test_compiled_modules_carry_a_complete_manifest(report, module_cli, tmp_path):
    row = _row(report, "nano33ble", "int8")
    out = tmp_path / "module.zip"
    module = module_cli.json("compile", row["variant"], "--board", "nano33ble", "--out", str(out))
    assert module["fits"] and out.exists()
    archive = zipfile.ZipFile(io.BytesIO(out.read_bytes()))
    manifest = json.loads(archive.read("manifest.json"))
    assert manifest["arena_bytes"] == row["arena_bytes"]
    assert manifest["flash_bytes"] == module["flash_bytes"]
    assert manifest["lineage"]["snapshot"] == report["snapshot"]
    assert manifest["selftest"]["runtime"] == "tflm" and len(manifest["selftest"]["inputs"]) == 4
    assert set(manifest["files"]) <= set(archive.namelist())
    assert "model_data.cc" in manifest["files"] and "model_ops.h" in manifest["files"]


def test_models_show_walks_the_lineage(report, module_cli):
    shown = module_cli.json("models", "show", report["model"])
    assert shown["run"]["snapshot"] == report["snapshot"]
    assert {v["quantization"] for v in shown["variants"]} == {"float32", "float16", "int8"}
    assert len(shown["modules"]) >= 9


def test_a_variant_shows_its_layers_with_parameters_and_macs(report, module_cli):
    row = _row(report, "pico", "int8")
    variant = module_cli.json("models", "variant", row["variant"])
    convs = [layer for layer in variant["layers"] if layer["op"] == "CONV_2D"]
    assert len(convs) == 3 and all(layer["macs"] > 0 and layer["params"] > 0 for layer in convs)
    assert sum(layer["params"] for layer in variant["layers"]) == variant["params"]
    assert all(
        layer["params"] == 0 for layer in variant["layers"] if layer["op"] in ("RESHAPE", "EXPAND_DIMS")
    )
    assert variant["inputs"][0]["dtype"] == "int8" and variant["inputs"][0]["shape"] == [1, 64, 3]
    assert {m["board"] for m in variant["modules"]} >= {"pico"}
