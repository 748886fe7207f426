"""The LiteRT compiler plugin.

LiteRT loads a ``.tflite`` file as it is, so the module is the exact bytes plus ``model.json``, a
description an application can read without parsing the flatbuffer (tensor layout, quantization,
and the input scaling to apply to values in sensor units before input 0).
"""

from __future__ import annotations

import json
from typing import ClassVar

from tinymlaas.catalog.board import Board
from tinymlaas.compilers.base import Compiler, VariantArtifact
from tinymlaas.errors import UnsupportedModel

__all__ = ["MODEL_FILE", "MODEL_JSON", "LiteRtCompiler"]

MODEL_FILE = "model.tflite"
MODEL_JSON = "model.json"


class LiteRtCompiler(Compiler):
    """``model.tflite`` and ``model.json`` for the LiteRT interpreter."""

    name: ClassVar[str] = "litert"
    runtime: ClassVar[str] = "litert"

    def compile_files(self, variant: VariantArtifact, board: Board) -> dict[str, bytes]:
        if not variant.tflite:
            raise UnsupportedModel(f"Variant {variant.variant_id} of model {variant.model_id} is empty")
        info = variant.info
        description = {
            "model": {
                "id": variant.model_id,
                "name": variant.model_name,
                "version": variant.model_version,
                "variant": variant.variant_id,
                "quantization": variant.quantization,
            },
            "board": board.id,
            "runtime": self.runtime,
            "file": MODEL_FILE,
            "size_bytes": len(variant.tflite),
            "ops": sorted(set(info.ops)),
            "inputs": [tensor.as_dict() for tensor in info.inputs],
            "outputs": [tensor.as_dict() for tensor in info.outputs],
            "input_scaling": variant.input_scaling.as_dict(),
        }
        text = json.dumps(description, indent=2, sort_keys=True) + "\n"
        return {MODEL_FILE: bytes(variant.tflite), MODEL_JSON: text.encode("utf-8")}
