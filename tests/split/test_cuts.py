"""Cutting int8 models: which cuts exist, and that head then tail is the unsplit model byte for byte."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tflite_micro")

from tinymlaas.compilers.native.graph import read_graph
from tinymlaas.errors import InvalidInput, UnsupportedModel
from tinymlaas.split.cuts import find_cuts, split_model
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.squeeze.runtimes import LiteRtRunner, Runner, TflmRunner

ARENA = 64 * 1024
VECTORS = 8


def _tflm(model: bytes) -> TflmRunner:
    info = inspect_tflite(model)
    return TflmRunner(model, info.inputs[0], info.outputs[0], arena_bytes=ARENA)


def _litert(model: bytes) -> LiteRtRunner:
    info = inspect_tflite(model)
    return LiteRtRunner(model, info.inputs[0], info.outputs[0])


def _vectors(model: bytes) -> list[np.ndarray]:
    shape = inspect_tflite(model).inputs[0].shape
    rng = np.random.default_rng(3)
    return [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(VECTORS)]


def test_straight_cnn_every_cut_is_valid(straight_cnn: bytes) -> None:
    search = find_cuts(straight_cnn)
    info = inspect_tflite(straight_cnn)
    assert search.operators == len(info.layers) == 7
    assert [c.index for c in search.cuts] == list(range(8))
    assert search.skipped == () and search.not_int8 == ()
    first, last = search.cuts[0], search.cuts[-1]
    assert (first.tensor, first.shape, first.scale) == (
        info.inputs[0].name,
        info.inputs[0].shape,
        info.inputs[0].scale,
    )
    assert (last.tensor, last.shape, last.zero_point) == (
        info.outputs[0].name,
        info.outputs[0].shape,
        info.outputs[0].zero_point,
    )
    assert first.label == "all offloaded" and last.label == "all on device"
    assert first.head_ops == () and first.tail_ops == tuple(layer.op for layer in info.layers)
    for cut in search.cuts:
        assert cut.head_ops + cut.tail_ops == first.tail_ops
        assert cut.head_macs + cut.tail_macs == info.macs
        assert cut.nbytes == int(np.prod(cut.shape))
        assert -128 <= cut.zero_point <= 127 and cut.scale > 0
    conv = search.cuts[1]
    assert conv.shape == (1, 10, 10, 4) and conv.nbytes == 400
    assert conv.head_macs == 10 * 10 * 4 * 3 * 3 * 2
    # The first conv's weights (4×3×3×2 int8) and bias (4 int32) are the head's alone.
    assert conv.head_weight_bytes == 72 + 16
    assert conv.label.startswith("after node 0 (CONV_2D) → '") and conv.label.endswith("' 10×10×4")
    assert search.cuts[0].tail_weight_bytes == search.cuts[-1].head_weight_bytes


def test_residual_cuts_inside_the_branch_are_skipped(residual_cnn: bytes) -> None:
    search = find_cuts(residual_cnn)
    ops = [layer.op for layer in inspect_tflite(residual_cnn).layers]
    add = ops.index("ADD")
    # Between the stem and the ADD both the skip and the branch are live.
    assert search.skipped == tuple((k, 2) for k in range(2, add + 1))
    assert [c.index for c in search.cuts] == [0, 1, *range(add + 1, len(ops) + 1)]


@pytest.mark.parametrize("fixture", ["straight_cnn", "residual_cnn"])
def test_head_then_tail_is_the_unsplit_model(fixture: str, request: pytest.FixtureRequest) -> None:
    model: bytes = request.getfixturevalue(fixture)
    vectors = _vectors(model)
    operators = find_cuts(model).operators
    for make in (_tflm, _litert):
        whole: Runner = make(model)
        expected = [whole.run_raw(x).copy() for x in vectors]
        for cut in find_cuts(model).cuts:
            head, tail = split_model(model, cut.index)
            assert (head is None) == (cut.index == 0) and (tail is None) == (cut.index == operators)
            runners = [make(half) for half in (head, tail) if half is not None]
            for x, want in zip(vectors, expected, strict=True):
                y = x
                for runner in runners:
                    y = runner.run_raw(y)
                assert y.dtype == np.int8 and y.tobytes() == want.tobytes(), (
                    f"{fixture} cut {cut.index} in {whole.runtime} differs"
                )


def test_halves_carry_their_own_weights_and_the_cut_tensor(straight_cnn: bytes) -> None:
    whole = inspect_tflite(straight_cnn)
    for cut in find_cuts(straight_cnn).cuts[1:-1]:
        head, tail = split_model(straight_cnn, cut.index)
        assert head is not None and tail is not None
        head_info, tail_info = inspect_tflite(head), inspect_tflite(tail)
        assert [layer.op for layer in head_info.layers] == list(cut.head_ops)
        assert [layer.op for layer in tail_info.layers] == list(cut.tail_ops)
        assert head_info.inputs[0] == whole.inputs[0] and tail_info.outputs[0] == whole.outputs[0]
        for crossing in (head_info.outputs[0], tail_info.inputs[0]):
            assert (crossing.name, crossing.shape, crossing.dtype) == (cut.tensor, cut.shape, "int8")
            assert (crossing.scale, crossing.zero_point) == (pytest.approx(cut.scale), cut.zero_point)
        assert head_info.params + tail_info.params == whole.params
        # Each half holds its own constants and no one else's: the two files together are about
        # the whole model's weights plus two headers, never the whole model twice.
        assert find_cuts(head).cuts[-1].head_weight_bytes == cut.head_weight_bytes
        assert find_cuts(tail).cuts[0].tail_weight_bytes == cut.tail_weight_bytes
        assert len(head) + len(tail) < len(straight_cnn) + 4096
        for half in (head, tail):
            graph = read_graph(half)
            assert len(graph.inputs) == len(graph.outputs) == 1


def test_invalid_cuts_are_refused(straight_cnn: bytes, residual_cnn: bytes) -> None:
    for index in (-1, 8):
        with pytest.raises(InvalidInput, match=r"cut .* out of range.*0\.\.7"):
            split_model(straight_cnn, index)
    skipped, crossing = find_cuts(residual_cnn).skipped[0]
    with pytest.raises(InvalidInput, match=rf"cut {skipped} is not a valid cut: {crossing} tensors"):
        split_model(residual_cnn, skipped)


def _edited(model: bytes, edit: Callable[[Any], None]) -> bytes:
    """``model`` with one change made through TensorFlow's flatbuffer object API."""
    import flatbuffers
    from tensorflow.lite.python import schema_py_generated as schema

    tree = schema.ModelT.InitFromObj(schema.Model.GetRootAs(model, 0))
    edit(tree)
    builder = flatbuffers.Builder(1024)
    builder.Finish(tree.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_models_that_cannot_be_cut_are_refused(straight_cnn: bytes) -> None:
    from tensorflow.lite.python import schema_py_generated as schema

    def float_input(tree: Any) -> None:
        graph = tree.subgraphs[0]
        graph.tensors[graph.inputs[0]].type = schema.TensorType.FLOAT32

    def unquantized_output(tree: Any) -> None:
        graph = tree.subgraphs[0]
        graph.tensors[graph.outputs[0]].quantization = None

    def two_subgraphs(tree: Any) -> None:
        tree.subgraphs.append(tree.subgraphs[0])

    for edit, message in (
        (float_input, r"model input '.*' is float32; only full-integer int8"),
        (unquantized_output, r"model output '.*' has no per-tensor quantization"),
        (two_subgraphs, "2 subgraphs; only single-subgraph"),
    ):
        broken = _edited(straight_cnn, edit)
        with pytest.raises(UnsupportedModel, match=message):
            find_cuts(broken)
        with pytest.raises(UnsupportedModel, match=message):
            split_model(broken, 1)
    with pytest.raises(UnsupportedModel, match="no 'TFL3'"):
        find_cuts(b"not a model at all")
    with pytest.raises(UnsupportedModel, match="truncated or corrupt"):
        find_cuts(straight_cnn[: len(straight_cnn) // 3])


def test_cutting_needs_no_tensorflow(straight_cnn: bytes) -> None:
    import subprocess
    import sys

    code = (
        "import sys; from tinymlaas.split.cuts import find_cuts; "
        f"print(len(find_cuts(open({_path(straight_cnn)!r}, 'rb').read()).cuts)); "
        "print('tensorflow' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["8", "False"]


def _path(data: bytes) -> str:
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".tflite", delete=False) as f:
        f.write(data)
    return f.name
