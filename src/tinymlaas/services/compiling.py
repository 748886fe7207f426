"""Compile: a variant + a board -> an inference module with its manifest and fit verdict."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np

from tinymlaas.catalog.board import Board
from tinymlaas.compilers.base import Compiler, VariantArtifact
from tinymlaas.compilers.fit import check_fit
from tinymlaas.compilers.registry import compiler_for, get_compiler
from tinymlaas.data.scaling import InputScaling
from tinymlaas.errors import InvalidInput, NotFound, UnsupportedModel
from tinymlaas.services.context import Context, new_id
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.views import module_view
from tinymlaas.squeeze.info import ModelInfo, SelfTest
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.squeeze.runtimes import quantize
from tinymlaas.squeeze.variants import Progress, no_progress
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import ModuleRow, VariantRow

__all__ = ["choose_compiler", "compile_module", "module_package"]


# Test inputs handed to a compiler that checks its module on real data (``Compiler.measure``).
MAX_TEST_VECTORS = 1_000


def _test_vectors(
    ctx: Context, snapshot: tuple[str, int] | None, artifact: VariantArtifact
) -> tuple[bytes, ...]:
    """The snapshot's test split as the module's quantized input 0, as a device would feed it."""
    info = artifact.info
    if snapshot is None or not info.inputs or info.inputs[0].dtype != "int8":
        return ()
    snapshot_id, seed = snapshot
    x_test = DatasetService(ctx).load(snapshot_id, seed=seed).arrays.x_test[:MAX_TEST_VECTORS]
    tensor = info.inputs[0]
    if len(x_test) == 0 or x_test[0].size != math.prod(tensor.shape):
        return ()  # the samples do not fit the model's input (a model imported for another shape)
    scaling = artifact.input_scaling
    return tuple(
        quantize(scaling.apply(np.asarray(x, np.float32)).reshape(tensor.shape), tensor).tobytes()
        for x in x_test
    )


def _labels(spec: dict[str, Any] | None, info: ModelInfo) -> tuple[str, ...]:
    """The dataset's class names when the model's output has one value per class, else none."""
    labels = tuple(str(label) for label in (spec or {}).get("labels") or ())
    if not labels or not info.outputs or math.prod(info.outputs[0].shape) != len(labels):
        return ()
    return labels


def _artifact(
    ctx: Context, repo: ModelRepository, variant: VariantRow
) -> tuple[VariantArtifact, tuple[str, int] | None]:
    """The variant as compilers see it, and the (snapshot, seed) its test split comes from."""
    model = repo.model(variant.model_id)
    tflite = ctx.blobs.get(variant.tflite_blob)
    lineage = {"model": model.id, "variant": variant.id}
    snapshot = None
    if model.training_run_id:
        run = repo.run(model.training_run_id)
        lineage |= {"training_run": run.id, "snapshot": run.snapshot_id}
        snapshot = (run.snapshot_id, int(run.recipe.get("seed", 0)))
    if model.dataset_id:
        lineage["dataset"] = model.dataset_id
    info = inspect_tflite(tflite, name=variant.id)
    artifact = VariantArtifact(
        variant_id=variant.id,
        model_id=model.id,
        model_name=model.name,
        model_version=model.version,
        quantization=variant.quantization,
        tflite=tflite,
        info=info,
        arena_bytes=variant.arena_bytes,
        selftests={
            runtime: SelfTest(
                runtime=data["runtime"],
                inputs=tuple(tuple(v) for v in data["inputs"]),
                expected=tuple(tuple(v) for v in data["expected"]),
                tolerance=data["tolerance"],
            )
            for runtime, data in variant.selftests.items()
        },
        lineage=lineage,
        input_scaling=InputScaling.from_dict(model.input_scaling),
        method=variant.method,
        labels=_labels(model.spec, info),
    )
    return artifact, snapshot


def choose_compiler(board: Board, runtime: str | None, compiler: str | None) -> Compiler:
    """The compiler asked for by name, else the one for ``runtime`` or the board's first runtime."""
    if compiler is None:
        return compiler_for(board, runtime)
    try:
        plugin = get_compiler(compiler)
    except NotFound as exc:
        raise InvalidInput(f"compiler: {exc.detail}") from None
    if runtime is not None and runtime != plugin.runtime:
        raise InvalidInput(f"the {plugin.name} compiler targets runtime {plugin.runtime!r}, not {runtime!r}")
    if plugin.runtime not in board.runtimes:
        raise InvalidInput(
            f"Board {board.id} does not run {plugin.runtime!r} modules (the {plugin.name} compiler's "
            f"runtime); it runs: {', '.join(board.runtimes) or 'none'}"
        )
    return plugin


def compile_module(
    ctx: Context,
    variant_id: str,
    board_id: str,
    *,
    runtime: str | None = None,
    compiler: str | None = None,
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Compile ``variant_id`` for ``board_id`` and record the module with its fit verdict.

    A variant the runtime cannot run gets a module row with no package and the reasons, so the
    refusal is on record; a module that does not fit is packaged but marked ``fits: false`` and is
    never offered for deployment. A compiler that measures on the target (``Compiler.measure``) is
    given the test split as quantized inputs, and its flash and RAM replace the estimates.
    """
    board = ctx.catalog.board(board_id)
    plugin = choose_compiler(board, runtime, compiler)
    with ctx.session() as session:
        repo = ModelRepository(session)
        variant = repo.variant(variant_id)
        artifact, snapshot = _artifact(ctx, repo, variant)
        runtime_error = variant.runtime_errors.get(plugin.selftest_runtime or plugin.runtime)
    profile = ctx.catalog.runtime(plugin.runtime)
    verdict = check_fit(
        board, profile, artifact.info, arena_bytes=artifact.arena_bytes, runtime_error=runtime_error
    )
    package_blob = manifest = None
    reasons = list(verdict.reasons)
    flash_bytes, ram_bytes = verdict.flash_bytes, verdict.ram_bytes
    if runtime_error is None:
        try:
            progress(f"generating the {plugin.name} module")
            files = plugin.compile_files(artifact, board)
            target = None
            if plugin.measures_on_target:
                progress(f"checking against TFLM and measuring on {board.core}")
                artifact = replace(artifact, test_vectors=_test_vectors(ctx, snapshot, artifact))
                target = plugin.measure(artifact, board, files)
            if target is not None:
                verdict = check_fit(
                    board,
                    profile,
                    artifact.info,
                    arena_bytes=artifact.arena_bytes,
                    runtime_error=None,
                    measured=(target.flash_bytes, target.ram_bytes),
                )
                reasons, flash_bytes, ram_bytes = (
                    list(verdict.reasons),
                    verdict.flash_bytes,
                    verdict.ram_bytes,
                )
            module = plugin.package(
                artifact, board, files, flash_bytes=flash_bytes, ram_bytes=ram_bytes or 0, target=target
            )
        except UnsupportedModel as exc:
            reasons.append(f"the {plugin.name} compiler refused the model: {exc.detail}")
        else:
            manifest = dict(module.manifest)
            package_blob = ctx.blobs.put(module.to_zip())
    with ctx.session() as session:
        row = ModelRepository(session).add(
            ModuleRow(
                id=new_id("mod"),
                variant_id=variant_id,
                board_id=board.id,
                compiler=plugin.name,
                runtime=plugin.runtime,
                package_blob=package_blob,
                manifest=manifest,
                flash_bytes=flash_bytes,
                ram_bytes=ram_bytes,
                fits=package_blob is not None and not reasons,
                reasons=reasons,
            )
        )
        return module_view(row)


def module_package(ctx: Context, module_id: str) -> bytes:
    """The module's package (zip with manifest.json), as stored."""
    with ctx.session() as session:
        row = ModelRepository(session).module(module_id)
        if row.package_blob is None:
            raise InvalidInput(f"module {module_id} has no package: {'; '.join(row.reasons)}")
        blob = row.package_blob
    return ctx.blobs.get(blob)
