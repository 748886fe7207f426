"""Real model packages for the agent: two versions of a tiny int8 CNN, compiled for TFLM, LiteRT and
the native compiler (built and measured for the MCU board's core in QEMU)."""

from __future__ import annotations

import copy
import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from tinymlaas.catalog import load_catalog
from tinymlaas.compilers.base import MANIFEST_NAME, VariantArtifact
from tinymlaas.compilers.litert import LiteRtCompiler
from tinymlaas.compilers.native import NativeCompiler
from tinymlaas.compilers.tflm import TflmCompiler

MCU_BOARD = "nano33ble"
LINUX_BOARD = "rpi4"


@dataclass(frozen=True)
class Package:
    """A compiled module as a device receives it: the zip, and its manifest and files unpacked."""

    zip: bytes
    manifest: dict[str, Any]
    files: dict[str, bytes]

    def with_manifest(self, **changes: Any) -> Package:
        manifest = copy.deepcopy(self.manifest)
        manifest.update(changes)
        return Package(zip=b"", manifest=manifest, files=dict(self.files))


def _unzip(data: bytes) -> tuple[dict[str, Any], dict[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    return json.loads(files.pop(MANIFEST_NAME)), files


def _int8_model(seed: int) -> bytes:
    import keras

    from tinymlaas.squeeze.convert import Quantization, convert

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((32, 3)),
            keras.layers.Conv1D(8, 3, activation="relu"),
            keras.layers.GlobalAveragePooling1D(),
            keras.layers.Dense(4, activation="softmax"),
        ]
    )
    representative = np.random.default_rng(seed).normal(size=(64, 32, 3)).astype(np.float32)
    return convert(model, Quantization.INT8, representative)


@pytest.fixture(scope="session")
def packages() -> dict[tuple[str, int], Package]:
    """(runtime, model version) -> package, for runtimes "tflm", "litert" and "native", versions 1 and 2."""
    from tinymlaas.squeeze.variants import assess

    catalog = load_catalog()
    built: dict[tuple[str, int], Package] = {}
    for version in (1, 2):
        tflite = _int8_model(seed=version)
        squeezed = assess(tflite, None, max_arena_bytes=64 * 1024)
        variant = VariantArtifact(
            variant_id=f"var-{version}",
            model_id="mdl-agent",
            model_name="agent test cnn",
            model_version=version,
            quantization=squeezed.quantization,
            tflite=tflite,
            info=squeezed.info,
            arena_bytes=squeezed.arena.arena_bytes,
            selftests=squeezed.selftests,
        )
        compilers = (
            (TflmCompiler(), MCU_BOARD),
            (LiteRtCompiler(), LINUX_BOARD),
            (NativeCompiler(), MCU_BOARD),
        )
        for compiler, board in compilers:
            module = compiler.compile(
                variant, catalog.board(board), flash_bytes=len(tflite), ram_bytes=variant.arena_bytes or 0
            )
            data = module.to_zip()
            manifest, files = _unzip(data)
            built[(compiler.runtime, version)] = Package(zip=data, manifest=manifest, files=files)
    return built
