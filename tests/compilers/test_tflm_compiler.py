from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from tinymlaas.compilers.base import VariantArtifact
from tinymlaas.compilers.tflm import TFLM_BUILTIN_OPS, TflmCompiler, resolver_method, tensor_arena_size
from tinymlaas.data.scaling import ScalingMethod, fit_scaling
from tinymlaas.errors import UnsupportedModel
from tinymlaas.squeeze.info import TensorInfo

from .conftest import MEASURED_ARENA

STUB_INCLUDE = Path(__file__).parent / "tflm_stub"
FILES = {
    "model_data.h",
    "model_data.cc",
    "model_ops.h",
    "model_config.h",
    "inference.h",
    "inference.cc",
    "README.md",
    "model.tflite",
}

needs_gxx = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed")


@pytest.fixture(scope="module")
def files(variant, mcu_board) -> dict[str, str]:
    compiled = TflmCompiler().compile_files(variant, mcu_board)
    return {name: data.decode() for name, data in compiled.items() if name != "model.tflite"}


def _with_info(variant: VariantArtifact, **changes) -> VariantArtifact:
    return dataclasses.replace(variant, info=dataclasses.replace(variant.info, **changes))


def _constant(header: str, name: str) -> str:
    match = re.search(rf"\b{name}(?:\[[^\]]*\])? = ([^;]+);", header)
    assert match, f"{name} not declared"
    return match.group(1)


def _gxx(directory: Path, source: str, *extra: str) -> None:
    result = subprocess.run(
        ["g++", "-std=c++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", *extra, source],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _write(directory: Path, files: dict[str, str], *names: str) -> None:
    for name in names:
        (directory / name).write_text(files[name])


def test_the_bundle_has_the_documented_files(variant, mcu_board):
    assert set(TflmCompiler().compile_files(variant, mcu_board)) == FILES


def test_the_bundle_ships_the_exact_tflite_bytes_beside_the_c_array(variant, mcu_board):
    assert TflmCompiler().compile_files(variant, mcu_board)["model.tflite"] == variant.tflite


def test_model_array_decodes_to_the_exact_tflite_bytes(files, variant):
    source = files["model_data.cc"]
    body = re.search(r"alignas\(16\) const unsigned char g_model_data\[\] = \{\n(.*?)\n\};", source, re.S)
    assert body
    lines = body.group(1).splitlines()
    decoded = bytes(int(token, 16) for token in re.findall(r"0x([0-9a-f]{2})", body.group(1)))
    assert decoded == variant.tflite
    assert all(line.count("0x") == 12 for line in lines[:-1])
    assert 1 <= lines[-1].count("0x") <= 12
    assert _constant(source, "g_model_data_len") == str(len(variant.tflite))


def test_model_data_names_the_model_and_has_an_include_guard(files, variant):
    header = files["model_data.h"]
    assert "#ifndef TINYMLAAS_MODEL_DATA_H_" in header
    assert "#define TINYMLAAS_MODEL_DATA_H_" in header
    assert "extern const unsigned char g_model_data[];" in header
    for text in (files["model_data.h"], files["model_data.cc"]):
        assert variant.model_id in text
        assert "version 3" in text
        assert variant.variant_id in text
        assert "quantization int8" in text
        assert hashlib.sha256(variant.tflite).hexdigest() in text


def test_resolver_registers_exactly_the_models_ops(files, variant):
    expected = {
        "CONV_2D": "AddConv2D",
        "EXPAND_DIMS": "AddExpandDims",
        "FULLY_CONNECTED": "AddFullyConnected",
        "PACK": "AddPack",
        "RESHAPE": "AddReshape",
        "SHAPE": "AddShape",
        "SOFTMAX": "AddSoftmax",
        "STRIDED_SLICE": "AddStridedSlice",
    }
    ops_header = files["model_ops.h"]
    calls = re.findall(r"resolver\.(Add\w+)\(\)", ops_header)
    assert sorted(calls) == sorted(expected[op] for op in variant.info.ops)
    assert len(calls) == len(set(calls)) == len(variant.info.ops)
    assert _constant(ops_header, "kModelOpCount") == str(len(calls))
    assert "tflite::MicroMutableOpResolver<kModelOpCount>" in ops_header


@pytest.mark.parametrize(
    ("op", "method"),
    [
        ("CONV_2D", "AddConv2D"),
        ("DEPTHWISE_CONV_2D", "AddDepthwiseConv2D"),
        ("MAX_POOL_2D", "AddMaxPool2D"),
        ("AVERAGE_POOL_2D", "AddAveragePool2D"),
        ("FULLY_CONNECTED", "AddFullyConnected"),
        ("SOFTMAX", "AddSoftmax"),
        ("QUANTIZE", "AddQuantize"),
        ("DEQUANTIZE", "AddDequantize"),
        ("MEAN", "AddMean"),
        ("LOGISTIC", "AddLogistic"),
        ("RELU6", "AddRelu6"),
        ("PADV2", "AddPadV2"),
        ("BATCH_MATMUL", "AddBatchMatMul"),
        ("CUMSUM", "AddCumSum"),
        ("UNIDIRECTIONAL_SEQUENCE_LSTM", "AddUnidirectionalSequenceLSTM"),
        ("L2_NORMALIZATION", "AddL2Normalization"),
        ("ADD_N", "AddAddN"),
        ("SELECT_V2", "AddSelectV2"),
    ],
)
def test_resolver_method_names_follow_tflm(op, method):
    assert resolver_method(op) == method


def test_an_op_without_a_tflm_kernel_is_rejected_by_name(variant, mcu_board):
    unsupported = _with_info(variant, ops=(*variant.info.ops, "NON_MAX_SUPPRESSION_V5"))
    with pytest.raises(UnsupportedModel, match="NON_MAX_SUPPRESSION_V5"):
        TflmCompiler().compile_files(unsupported, mcu_board)


def test_a_variant_tflm_cannot_run_is_rejected(variant, mcu_board):
    with pytest.raises(UnsupportedModel, match="arena"):
        TflmCompiler().compile_files(dataclasses.replace(variant, arena_bytes=None), mcu_board)


def test_a_dynamic_input_shape_is_rejected(variant, mcu_board):
    dynamic = dataclasses.replace(variant.info.inputs[0], shape=(-1, 32, 3))
    with pytest.raises(UnsupportedModel, match="dynamic shape"):
        TflmCompiler().compile_files(_with_info(variant, inputs=(dynamic,)), mcu_board)


@pytest.mark.parametrize(
    ("measured", "compiled"), [(1, 1040), (3000, 4032), (10000, 11024), (100_000, 110_000)]
)
def test_arena_is_rounded_to_16_plus_a_margin(measured, compiled):
    assert tensor_arena_size(measured) == compiled
    assert compiled % 16 == 0
    assert compiled - measured >= 1024


def test_config_declares_arena_and_io(files, variant):
    config = files["model_config.h"]
    source_input, source_output = variant.info.inputs[0], variant.info.outputs[0]
    assert _constant(config, "kTensorArenaSize") == str(tensor_arena_size(MEASURED_ARENA))
    assert str(MEASURED_ARENA) in config
    assert _constant(config, "kInputDims") == "{1, 32, 3}"
    assert _constant(config, "kInputElements") == "96"
    assert _constant(config, "kInputType") == '"int8"'
    assert _constant(config, "kInputQuantized") == "true"
    assert float(_constant(config, "kInputScale").rstrip("f")) == pytest.approx(source_input.scale)
    assert int(_constant(config, "kInputZeroPoint")) == source_input.zero_point
    assert _constant(config, "kOutputDims") == "{1, 4}"
    assert float(_constant(config, "kOutputScale").rstrip("f")) == pytest.approx(source_output.scale)
    assert int(_constant(config, "kOutputZeroPoint")) == source_output.zero_point
    assert _constant(config, "kNumClasses") == "4"
    assert _constant(config, "kModelInputCount") == "1"
    assert _constant(config, "kModelOutputCount") == "1"


def test_config_of_a_float_model_says_not_quantized(variant, mcu_board, tmp_path):
    def as_float(tensor: TensorInfo) -> TensorInfo:
        return dataclasses.replace(tensor, dtype="float32", scale=None, zero_point=None)

    info = variant.info
    floats = _with_info(
        variant, inputs=tuple(map(as_float, info.inputs)), outputs=tuple(map(as_float, info.outputs))
    )
    config = TflmCompiler().compile_files(floats, mcu_board)["model_config.h"].decode()
    assert _constant(config, "kInputQuantized") == "false"
    assert _constant(config, "kInputScale") == "0.0f"
    assert _constant(config, "kOutputType") == '"float32"'


def test_readme_describes_board_and_model(files, variant, mcu_board):
    readme = files["README.md"]
    for text in (mcu_board.name, mcu_board.core, mcu_board.soc, variant.model_id, "CMSIS-NN"):
        assert text in readme
    assert str(tensor_arena_size(MEASURED_ARENA)) in readme
    assert str(len(variant.tflite)) in readme
    for op in variant.info.ops:
        assert f"`{op}`" in readme


@needs_gxx
def test_gxx_accepts_model_data_with_only_its_own_header(files, tmp_path):
    _write(tmp_path, files, "model_data.h", "model_data.cc")
    _gxx(tmp_path, "model_data.cc")


@needs_gxx
def test_gxx_accepts_the_config_header_alone(files, tmp_path):
    _write(tmp_path, files, "model_config.h")
    _gxx(tmp_path, "model_config.h", "-x", "c++")


@needs_gxx
def test_gxx_accepts_the_whole_bundle_against_tflm_declarations(files, tmp_path):
    _write(tmp_path, files, *(name for name in FILES if name.endswith((".h", ".cc"))))
    _gxx(tmp_path, "inference.cc", f"-I{STUB_INCLUDE}")


@needs_gxx
def test_every_tflm_op_maps_to_a_resolver_method(variant, mcu_board, tmp_path):
    everything = _with_info(variant, ops=tuple(sorted(TFLM_BUILTIN_OPS)))
    ops_header = TflmCompiler().compile_files(everything, mcu_board)["model_ops.h"].decode()
    (tmp_path / "model_ops.h").write_text(ops_header)
    _gxx(tmp_path, "model_ops.h", "-x", "c++", f"-I{STUB_INCLUDE}")


def test_manifest_lists_every_file_with_hash_and_size(variant, mcu_board):
    module = TflmCompiler().compile(variant, mcu_board, flash_bytes=120_000, ram_bytes=40_000)
    manifest = module.manifest
    assert set(manifest["files"]) == FILES
    for name, data in module.files.items():
        assert manifest["files"][name] == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
    assert manifest["runtime"] == "tflm"
    assert manifest["compiler"]["name"] == "tflm"
    assert manifest["board"] == mcu_board.id
    assert manifest["arena_bytes"] == MEASURED_ARENA
    assert manifest["ops"] == list(variant.info.ops)
    assert manifest["selftest"]["runtime"] == "tflm"


def test_zip_is_deterministic_and_carries_the_manifest(variant, mcu_board):
    module = TflmCompiler().compile(variant, mcu_board, flash_bytes=120_000, ram_bytes=40_000)
    packed = module.to_zip()
    assert packed == module.to_zip()
    with zipfile.ZipFile(io.BytesIO(packed)) as archive:
        assert set(archive.namelist()) == FILES | {"manifest.json"}
        assert json.loads(archive.read("manifest.json")) == json.loads(json.dumps(dict(module.manifest)))
        for name, data in module.files.items():
            assert archive.read(name) == data


def test_compiling_twice_gives_the_same_files(variant, mcu_board):
    assert TflmCompiler().compile_files(variant, mcu_board) == TflmCompiler().compile_files(
        variant, mcu_board
    )


@needs_gxx
def test_the_module_scales_raw_inputs_exactly_as_training_did(variant, mcu_board, tmp_path):
    """The generated constants reproduce ``InputScaling.apply`` bit for bit in C++."""
    rng = np.random.default_rng(5)
    raw = np.stack(
        [rng.normal(9.81, 0.3, (64, 32)), rng.normal(0, 0.01, (64, 32)), rng.normal(700, 300, (64, 32))],
        axis=-1,
    ).astype(np.float32)
    scaling = fit_scaling(ScalingMethod.STANDARDIZE, raw)
    scaled_variant = dataclasses.replace(variant, input_scaling=scaling)
    config = TflmCompiler().compile_files(scaled_variant, mcu_board)["model_config.h"].decode()
    assert _constant(config, "kInputChannels") == "3"
    assert _constant(config, "kInputScaled") == "true"
    sample = raw[0].ravel()
    (tmp_path / "model_config.h").write_text(config)
    (tmp_path / "main.cc").write_text(
        '#include <cstdio>\n#include "model_config.h"\n'
        f"static const float kRaw[{sample.size}] = {{{', '.join(f'{v!r}f' for v in sample.tolist())}}};\n"
        "int main() {\n"
        f"  for (unsigned int i = 0; i < {sample.size}; ++i) {{\n"
        "    const unsigned int c = i % kInputChannels;\n"
        '    std::printf("%a\\n", (kRaw[i] - kInputOffset[c]) / kInputSpread[c]);\n'
        "  }\n}\n"
    )
    subprocess.run(["g++", "-std=c++17", "-O0", "-o", "scale", "main.cc"], cwd=tmp_path, check=True)
    printed = subprocess.run([tmp_path / "scale"], capture_output=True, text=True, check=True).stdout.split()
    from_c = np.array([float.fromhex(v) for v in printed], dtype=np.float32)
    assert np.array_equal(from_c, scaling.apply(raw[0]).ravel())


def test_an_unscaled_model_declares_identity_scaling(files):
    config = files["model_config.h"]
    assert _constant(config, "kInputScaled") == "false"
    assert _constant(config, "kInputOffset") == "{0.0f}"
    assert _constant(config, "kInputSpread") == "{1.0f}"


def test_a_scaling_for_other_channels_is_refused(variant, mcu_board):
    wrong = fit_scaling(ScalingMethod.STANDARDIZE, np.zeros((4, 5), np.float32) + np.arange(5))
    with pytest.raises(UnsupportedModel, match="5 channels but input 0 has 3"):
        TflmCompiler().compile_files(dataclasses.replace(variant, input_scaling=wrong), mcu_board)
