"""Compile: a variant + a board -> an inference module with its manifest and fit verdict."""

from __future__ import annotations

from typing import Any

from tinymlaas.compilers.base import VariantArtifact
from tinymlaas.compilers.fit import check_fit
from tinymlaas.compilers.registry import compiler_for
from tinymlaas.data.scaling import InputScaling
from tinymlaas.errors import InvalidInput, UnsupportedModel
from tinymlaas.services.context import Context, new_id
from tinymlaas.services.views import module_view
from tinymlaas.squeeze.info import SelfTest
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import ModuleRow, VariantRow

__all__ = ["compile_module", "module_package"]


def _artifact(ctx: Context, repo: ModelRepository, variant: VariantRow) -> VariantArtifact:
    model = repo.model(variant.model_id)
    tflite = ctx.blobs.get(variant.tflite_blob)
    lineage = {"model": model.id, "variant": variant.id}
    if model.training_run_id:
        run = repo.run(model.training_run_id)
        lineage |= {"training_run": run.id, "snapshot": run.snapshot_id}
    if model.dataset_id:
        lineage["dataset"] = model.dataset_id
    return VariantArtifact(
        variant_id=variant.id,
        model_id=model.id,
        model_name=model.name,
        model_version=model.version,
        quantization=variant.quantization,
        tflite=tflite,
        info=inspect_tflite(tflite, name=variant.id),
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
    )


def compile_module(
    ctx: Context, variant_id: str, board_id: str, *, runtime: str | None = None
) -> dict[str, Any]:
    """Compile ``variant_id`` for ``board_id`` and record the module with its fit verdict.

    A variant the runtime cannot run gets a module row with no package and the reasons, so the
    refusal is on record; a module that does not fit is packaged but marked ``fits: false`` and is
    never offered for deployment.
    """
    board = ctx.catalog.board(board_id)
    compiler = compiler_for(board, runtime)
    with ctx.session() as session:
        repo = ModelRepository(session)
        variant = repo.variant(variant_id)
        artifact = _artifact(ctx, repo, variant)
        runtime_error = variant.runtime_errors.get(compiler.runtime)
    verdict = check_fit(
        board,
        ctx.catalog.runtime(compiler.runtime),
        artifact.info,
        arena_bytes=artifact.arena_bytes,
        runtime_error=runtime_error,
    )
    package_blob = manifest = None
    reasons = list(verdict.reasons)
    if runtime_error is None:
        try:
            module = compiler.compile(
                artifact, board, flash_bytes=verdict.flash_bytes, ram_bytes=verdict.ram_bytes or 0
            )
        except UnsupportedModel as exc:
            reasons.append(f"the {compiler.name} compiler refused the model: {exc.detail}")
        else:
            manifest = dict(module.manifest)
            package_blob = ctx.blobs.put(module.to_zip())
    with ctx.session() as session:
        row = ModelRepository(session).add(
            ModuleRow(
                id=new_id("mod"),
                variant_id=variant_id,
                board_id=board.id,
                compiler=compiler.name,
                runtime=compiler.runtime,
                package_blob=package_blob,
                manifest=manifest,
                flash_bytes=verdict.flash_bytes,
                ram_bytes=verdict.ram_bytes,
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
