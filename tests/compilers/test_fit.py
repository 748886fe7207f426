"""The fit check against hand-made model descriptions and the shipped catalog's boards."""

import pytest

from tinymlaas.catalog import load_catalog
from tinymlaas.compilers.fit import check_fit
from tinymlaas.compilers.tflm import tensor_arena_size
from tinymlaas.squeeze.info import LayerInfo, ModelInfo, TensorInfo


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _info(size_bytes, ops=("CONV_2D", "FULLY_CONNECTED", "SOFTMAX"), quantization="int8", params=1000):
    tensor = TensorInfo("x", (1, 64, 3), "int8", 0.1, 0)
    layers = (LayerInfo(0, ops[0], (1, 4), params, 0),)
    return ModelInfo(
        size_bytes, tuple(ops), (tensor,), (tensor,), layers, quantization, activation_bytes=4096
    )


def test_a_small_int8_model_fits_a_nano_and_the_figures_add_up(catalog):
    board, tflm = catalog.board("nano33ble"), catalog.runtime("tflm")
    verdict = check_fit(board, tflm, _info(40_000), arena_bytes=10_000, runtime_error=None)
    footprint = tflm.footprint_for(board.core)
    assert verdict.fits and verdict.reasons == ()
    assert verdict.flash_bytes == 40_000 + footprint.flash_bytes + 3 * footprint.per_op_flash_bytes
    assert verdict.ram_bytes == tensor_arena_size(10_000) + footprint.ram_bytes


def test_every_reason_is_listed(catalog):
    board = catalog.board("pico")
    verdict = check_fit(
        board,
        catalog.runtime("tflm"),
        _info(board.usable_flash_bytes, ops=("CONV_2D", "TOPK_V2")),
        arena_bytes=board.usable_ram_bytes,
        runtime_error=None,
    )
    assert not verdict.fits
    text = " | ".join(verdict.reasons)
    assert "TOPK_V2" in text and "of flash" in text and "of RAM" in text
    assert len(verdict.reasons) == 3


def test_a_runtime_failure_leaves_ram_unknown_and_refuses(catalog):
    verdict = check_fit(
        catalog.board("nano33ble"),
        catalog.runtime("tflm"),
        _info(20_000, quantization="float16"),
        arena_bytes=None,
        runtime_error="TFLM cannot run this model: DEQUANTIZE failed to prepare",
    )
    assert not verdict.fits and verdict.ram_bytes is None
    assert verdict.reasons == ("TFLM cannot run this model: DEQUANTIZE failed to prepare",)


def test_a_board_without_the_runtime_is_refused(catalog):
    verdict = check_fit(
        catalog.board("nano33ble"),
        catalog.runtime("litert"),
        _info(20_000),
        arena_bytes=5000,
        runtime_error=None,
    )
    assert not verdict.fits and "does not run litert" in verdict.reasons[0]


def test_linux_boards_hold_the_model_and_expanded_fp16_weights_in_ram(catalog):
    board, litert = catalog.board("rpi4"), catalog.runtime("litert")
    info = _info(50_000, quantization="float16", params=20_000)
    verdict = check_fit(board, litert, info, arena_bytes=None, runtime_error=None)
    footprint = litert.footprint_for(board.core)
    assert verdict.fits
    assert verdict.ram_bytes == 4096 + 20_000 * 4 + footprint.ram_bytes + 50_000
