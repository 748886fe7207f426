"""The ML compiler plugin interface: model variant + board profile in, inference module out.

A plugin is a small class registered under the ``tinymlaas.compilers`` entry-point group, so a
vendor can ship its own in a separate package. The plugin produces files; the manifest that
describes them is built here, the same way for every plugin, so a device can trust its shape.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, ClassVar

from tinymlaas.catalog.board import Board
from tinymlaas.data.scaling import InputScaling, ScalingMethod
from tinymlaas.squeeze.info import ModelInfo, SelfTest

__all__ = ["CompiledModule", "Compiler", "OnTarget", "SelfTest", "VariantArtifact", "build_manifest"]

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = 1
# Fixed timestamp for zip entries so the same module always packs to the same bytes.
_ZIP_EPOCH = (2020, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class VariantArtifact:
    """Everything a compiler may use about one squeezed model variant."""

    variant_id: str
    model_id: str
    model_name: str
    model_version: int
    quantization: str  # "float32" | "float16" | "int8"
    tflite: bytes
    info: ModelInfo
    arena_bytes: int | None  # minimal TFLM arena, measured; None when TFLM cannot run the variant
    selftests: Mapping[str, SelfTest]  # runtime id -> vectors produced by that runtime
    lineage: Mapping[str, str] = field(default_factory=dict)  # "snapshot", "training_run", ...
    # Applied to inputs in sensor units before input 0 is quantized; a module's API takes raw values.
    input_scaling: InputScaling = field(default_factory=lambda: InputScaling(ScalingMethod.NONE))
    method: str | None = None  # int8: "ptq" or "qat"
    # Quantized input-0 tensors from the dataset's test split (bounded), for compilers that check
    # their output against the reference runtime on real data; empty when the model has no test split.
    test_vectors: tuple[bytes, ...] = ()
    # Class names in output order for a classifier (a device names its results and a pipeline's
    # conditions by them); empty for a regression or a split model's head.
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "selftests", MappingProxyType(dict(self.selftests)))
        object.__setattr__(self, "lineage", MappingProxyType(dict(self.lineage)))


@dataclass(frozen=True)
class OnTarget:
    """What a compiler measured by building the module for the board's core and running it there.

    These figures replace the fit check's estimates: flash and RAM come from the linker and the
    running program, not from a per-runtime footprint table. ``details`` goes into the manifest as
    ``target`` (instruction counts, per-layer figures, the toolchain, how the latency was estimated).
    """

    flash_bytes: int
    ram_bytes: int
    details: Mapping[str, Any]


@dataclass(frozen=True)
class CompiledModule:
    """An inference module: its files plus the manifest that lists them."""

    files: Mapping[str, bytes]
    manifest: Mapping[str, Any]
    target: OnTarget | None = None

    def to_zip(self) -> bytes:
        """Pack deterministically: sorted names, fixed timestamps, manifest last."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name in sorted(self.files):
                archive.writestr(zipfile.ZipInfo(name, _ZIP_EPOCH), self.files[name])
            manifest = json.dumps(self.manifest, indent=2, sort_keys=True).encode()
            archive.writestr(zipfile.ZipInfo(MANIFEST_NAME, _ZIP_EPOCH), manifest)
        return buffer.getvalue()


class Compiler(ABC):
    """A compiler plugin. Subclasses set ``name`` and ``runtime`` and implement ``compile_files``."""

    name: ClassVar[str]
    runtime: ClassVar[str]  # the runtime id the module runs on; must be in the board's runtimes
    version: ClassVar[str] = "1"
    # The runtime whose self-test vectors the module must reproduce; None: its own runtime's. A
    # compiler that is bit-exact with another runtime ships that runtime's vectors.
    selftest_runtime: ClassVar[str | None] = None
    # Whether ``measure`` builds and runs the module on the target; the caller then hands it the
    # dataset's test vectors (``VariantArtifact.test_vectors``), which cost a dataset load.
    measures_on_target: ClassVar[bool] = False

    @abstractmethod
    def compile_files(self, variant: VariantArtifact, board: Board) -> dict[str, bytes]:
        """Return the module's files (path inside the package -> bytes), manifest excluded."""

    def measure(self, variant: VariantArtifact, board: Board, files: Mapping[str, bytes]) -> OnTarget | None:
        """Build and run the module for ``board`` and return what it measured; None: this compiler
        cannot measure on the target, so the fit check's estimates stand."""
        return None

    def package(
        self,
        variant: VariantArtifact,
        board: Board,
        files: Mapping[str, bytes],
        *,
        flash_bytes: int,
        ram_bytes: int,
        target: OnTarget | None = None,
    ) -> CompiledModule:
        manifest = build_manifest(variant, board, self, files, flash_bytes=flash_bytes, ram_bytes=ram_bytes)
        if target is not None:
            manifest["target"] = dict(target.details)
        return CompiledModule(files=MappingProxyType(dict(files)), manifest=manifest, target=target)

    def compile(
        self, variant: VariantArtifact, board: Board, *, flash_bytes: int, ram_bytes: int
    ) -> CompiledModule:
        """Files, on-target measurement where the compiler has one, and the manifest; measured
        flash and RAM replace the estimates passed in."""
        files = self.compile_files(variant, board)
        target = self.measure(variant, board, files)
        if target is not None:
            flash_bytes, ram_bytes = target.flash_bytes, target.ram_bytes
        return self.package(
            variant, board, files, flash_bytes=flash_bytes, ram_bytes=ram_bytes, target=target
        )


def build_manifest(
    variant: VariantArtifact,
    board: Board,
    compiler: Compiler,
    files: Mapping[str, bytes],
    *,
    flash_bytes: int,
    ram_bytes: int,
) -> dict[str, Any]:
    """The manifest a package carries (docs/ARCHITECTURE.md, Protocols); unsigned: deployment signs it."""
    selftest = variant.selftests.get(compiler.selftest_runtime or compiler.runtime)
    return {
        "schema": MANIFEST_SCHEMA,
        "model": {
            "id": variant.model_id,
            "name": variant.model_name,
            "version": variant.model_version,
            "variant": variant.variant_id,
            "quantization": variant.quantization,
            "method": variant.method,
        },
        "board": board.id,
        "runtime": compiler.runtime,
        "compiler": {"name": compiler.name, "version": compiler.version},
        "files": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in sorted(files.items())
        },
        "arena_bytes": variant.arena_bytes,
        "flash_bytes": flash_bytes,
        "ram_bytes": ram_bytes,
        "ops": list(variant.info.ops),
        "inputs": [t.as_dict() for t in variant.info.inputs],
        "outputs": [t.as_dict() for t in variant.info.outputs],
        "input_scaling": variant.input_scaling.as_dict(),
        "labels": list(variant.labels),
        "selftest": selftest.as_dict() if selftest else None,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "lineage": dict(variant.lineage),
    }
