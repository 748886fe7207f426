from __future__ import annotations

import hashlib
import io
import json
import zipfile

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tinymlaas.compilers.litert import LiteRtCompiler


def test_module_is_the_exact_model_plus_its_description(variant, linux_board):
    files = LiteRtCompiler().compile_files(variant, linux_board)
    assert set(files) == {"model.tflite", "model.json"}
    assert files["model.tflite"] == variant.tflite
    description = json.loads(files["model.json"])
    assert description["model"] == {
        "id": variant.model_id,
        "name": variant.model_name,
        "version": variant.model_version,
        "variant": variant.variant_id,
        "quantization": "int8",
    }
    assert description["runtime"] == "litert"
    assert description["board"] == linux_board.id
    assert description["size_bytes"] == len(variant.tflite)
    assert description["ops"] == sorted(variant.info.ops)
    assert description["inputs"] == [t.as_dict() for t in variant.info.inputs]
    assert description["outputs"] == [t.as_dict() for t in variant.info.outputs]


def test_description_matches_what_litert_reports(variant, linux_board):
    files = LiteRtCompiler().compile_files(variant, linux_board)
    described = json.loads(files["model.json"])["inputs"][0]
    detail = Interpreter(model_content=files["model.tflite"]).get_input_details()[0]
    assert described["shape"] == [int(d) for d in detail["shape"]]
    assert described["dtype"] == np.dtype(detail["dtype"]).name
    assert described["scale"] == detail["quantization"][0]
    assert described["zero_point"] == detail["quantization"][1]


def test_manifest_and_zip(variant, linux_board):
    module = LiteRtCompiler().compile(variant, linux_board, flash_bytes=0, ram_bytes=2_000_000)
    assert module.manifest["runtime"] == "litert"
    assert module.manifest["selftest"] is None  # the fixture has vectors for tflm only
    for name, data in module.files.items():
        assert module.manifest["files"][name] == {
            "sha256": hashlib.sha256(data).hexdigest(),
            "size": len(data),
        }
    packed = module.to_zip()
    assert packed == module.to_zip()
    with zipfile.ZipFile(io.BytesIO(packed)) as archive:
        assert sorted(archive.namelist()) == ["manifest.json", "model.json", "model.tflite"]
        assert archive.read("model.tflite") == variant.tflite
