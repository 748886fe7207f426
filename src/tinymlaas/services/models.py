"""Models through the lifecycle: train, squeeze into variants, compile modules, import from elsewhere.

Every row names the row it came from (snapshot -> run -> model -> variant -> module), and every
figure stored is measured on the artifact it describes.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tinymlaas.compilers.base import VariantArtifact
from tinymlaas.compilers.fit import FitVerdict, check_fit
from tinymlaas.compilers.registry import compiler_for
from tinymlaas.data.types import DatasetSpec, Task
from tinymlaas.errors import InvalidInput, NotFound, UnsupportedModel
from tinymlaas.metrics import score
from tinymlaas.services import _keras_io
from tinymlaas.services.context import Context, new_id
from tinymlaas.services.datasets import DatasetService, LoadedSnapshot, spec_to_dict
from tinymlaas.services.views import model_view, module_view, run_view, variant_view
from tinymlaas.squeeze.convert import Quantization
from tinymlaas.squeeze.info import SelfTest
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.squeeze.variants import Evaluation, SqueezedVariant, assess, squeeze
from tinymlaas.storage.tables import ModelRow, ModuleRow, TrainingRunRow, VariantRow
from tinymlaas.training.trainer import EpochCallback, default_recipe, train

__all__ = ["ModelService"]

Progress = Callable[[str], None]


def _quiet(_message: str) -> None:
    """Progress sink for callers that do not show progress."""


class ModelService:
    def __init__(self, context: Context) -> None:
        self.ctx = context
        self.datasets = DatasetService(context)

    # -- lookup -------------------------------------------------------------------------------

    def _model(self, session: Session, ref: str) -> ModelRow:
        """A model by id, ``name`` (newest version) or ``name:version``."""
        row = session.get(ModelRow, ref)
        if row is None:
            name, _, version = ref.partition(":")
            query = select(ModelRow).where(ModelRow.name == name)
            if version:
                if not version.isdigit():
                    raise InvalidInput(f"model reference {ref!r}: version must be a number")
                query = query.where(ModelRow.version == int(version))
            row = session.scalars(query.order_by(ModelRow.version.desc())).first()
        if row is None:
            raise NotFound(f"no model {ref!r} (give a model id, a name, or name:version)")
        return row

    def _variant(self, session: Session, variant_id: str) -> VariantRow:
        row = session.get(VariantRow, variant_id)
        if row is None:
            raise NotFound(f"no variant {variant_id!r} (see 'tinymlaas models show MODEL')")
        return row

    def _next_version(self, session: Session, name: str) -> int:
        return (session.scalar(select(func.max(ModelRow.version)).where(ModelRow.name == name)) or 0) + 1

    # -- train --------------------------------------------------------------------------------

    def train(
        self,
        dataset: str,
        *,
        arch: str | None = None,
        epochs: int | None = None,
        seed: int | None = None,
        on_epoch: EpochCallback | None = None,
    ) -> dict[str, Any]:
        """Snapshot ``dataset``, train on its split, store run + model; returns the model view."""
        seed = self.ctx.settings.seed if seed is None else seed
        snapshot_id = self.datasets.snapshot(dataset)
        loaded = self.datasets.load(snapshot_id, seed=seed)
        recipe = default_recipe(loaded.spec, arch=arch, epochs=epochs, seed=seed)
        started = time.perf_counter()
        result = train(loaded.spec, loaded.arrays, recipe, on_epoch)
        duration = time.perf_counter() - started
        keras_blob = self.ctx.blobs.put(_keras_io.to_bytes(result.model))
        with self.ctx.session() as session:
            run = TrainingRunRow(
                id=new_id("run"),
                snapshot_id=snapshot_id,
                recipe=recipe.as_dict(),
                split_counts=loaded.split_counts,
                history=result.history,
                metric_name=result.test_metric.name,
                metric_value=result.test_metric.value,
                epochs_run=result.epochs_run,
                duration_s=duration,
            )
            session.add(run)
            session.flush()
            model = ModelRow(
                id=new_id("mdl"),
                name=loaded.dataset,
                version=self._next_version(session, loaded.dataset),
                origin="trained",
                training_run_id=run.id,
                dataset_id=loaded.dataset_id,
                keras_blob=keras_blob,
                arch=recipe.arch,
                params=result.params,
                spec=spec_to_dict(loaded.spec),
                float_metric=result.test_metric.as_dict(),
            )
            session.add(model)
            session.flush()
            return {**model_view(model), "run": run_view(run)}

    # -- squeeze ------------------------------------------------------------------------------

    def _evaluation_for(
        self, session: Session, model: ModelRow
    ) -> tuple[Evaluation | None, LoadedSnapshot | None]:
        if model.training_run_id is None:
            return None, None
        run = session.get(TrainingRunRow, model.training_run_id)
        loaded = self.datasets.load(run.snapshot_id, seed=run.recipe["seed"])
        return Evaluation(loaded.spec.task, loaded.arrays.x_test, loaded.arrays.y_test), loaded

    def squeeze(
        self,
        model_ref: str,
        *,
        quantizations: Sequence[Quantization] = tuple(Quantization),
        progress: Progress = _quiet,
    ) -> list[dict[str, Any]]:
        """Convert a stored Keras model to each quantization and measure every variant."""
        with self.ctx.session() as session:
            model = self._model(session, model_ref)
            if model.keras_blob is None:
                raise InvalidInput(
                    f"model {model.name}:{model.version} was imported as .tflite; it is already a variant"
                )
            evaluation, loaded = self._evaluation_for(session, model)
        if loaded is None or evaluation is None:
            raise InvalidInput(f"model {model.id} has no training data to calibrate int8 with")
        keras_model = _keras_io.from_bytes(self.ctx.blobs.get(model.keras_blob))
        variants = squeeze(
            keras_model,
            loaded.arrays.x_train,
            evaluation,
            quantizations=quantizations,
            max_arena_bytes=self.ctx.settings.arena_search_max_bytes,
            progress=progress,
        )
        return [self._store_variant(model.id, v, loaded.snapshot_id) for v in variants]

    def _store_variant(
        self, model_id: str, variant: SqueezedVariant, snapshot_id: str | None
    ) -> dict[str, Any]:
        blob = self.ctx.blobs.put(variant.tflite)
        with self.ctx.session() as session:
            row = VariantRow(
                id=new_id("var"),
                model_id=model_id,
                quantization=variant.quantization,
                tflite_blob=blob,
                size_bytes=variant.info.size_bytes,
                info=dataclasses.asdict(variant.info),
                arena_bytes=variant.arena.arena_bytes,
                arena_tries=variant.arena.tries,
                metrics={k: m.as_dict() for k, m in variant.metrics.items()},
                runtime_errors=dict(variant.runtime_errors),
                selftests={k: s.as_dict() for k, s in variant.selftests.items()},
                evaluated_on=snapshot_id,
            )
            session.add(row)
            session.flush()
            return variant_view(row)

    # -- compile + fit ------------------------------------------------------------------------

    def _artifact(self, session: Session, variant: VariantRow) -> VariantArtifact:
        model = session.get(ModelRow, variant.model_id)
        tflite = self.ctx.blobs.get(variant.tflite_blob)
        lineage = {"model": model.id, "variant": variant.id}
        if model.training_run_id:
            run = session.get(TrainingRunRow, model.training_run_id)
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
        )

    def fit(self, variant_id: str, board_id: str, runtime: str | None = None) -> FitVerdict:
        board = self.ctx.catalog.board(board_id)
        with self.ctx.session() as session:
            variant = self._variant(session, variant_id)
            artifact = self._artifact(session, variant)
            errors = dict(variant.runtime_errors)
        chosen = runtime or compiler_for(board).runtime
        return check_fit(
            board,
            self.ctx.catalog.runtime(chosen),
            artifact.info,
            arena_bytes=artifact.arena_bytes,
            runtime_error=errors.get(chosen),
        )

    def compile(self, variant_id: str, board_id: str, *, runtime: str | None = None) -> dict[str, Any]:
        """Compile ``variant_id`` for ``board_id`` and record the module with its fit verdict.

        A variant the runtime cannot run gets a module row with no package and the reasons, so the
        refusal is on record; a module that does not fit is packaged but marked ``fits: false``.
        """
        board = self.ctx.catalog.board(board_id)
        compiler = compiler_for(board, runtime)
        with self.ctx.session() as session:
            variant = self._variant(session, variant_id)
            artifact = self._artifact(session, variant)
            runtime_error = variant.runtime_errors.get(compiler.runtime)
        verdict = check_fit(
            board,
            self.ctx.catalog.runtime(compiler.runtime),
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
                package_blob = self.ctx.blobs.put(module.to_zip())
        with self.ctx.session() as session:
            row = ModuleRow(
                id=new_id("mod"),
                variant_id=variant_id,
                board_id=board.id,
                compiler=compiler.name,
                runtime=compiler.runtime,
                package_blob=package_blob,
                manifest=manifest,
                flash_bytes=verdict.flash_bytes,
                ram_bytes=verdict.ram_bytes,
                fits=verdict.fits and package_blob is not None and not reasons,
                reasons=reasons,
            )
            session.add(row)
            session.flush()
            return module_view(row)

    def module_package(self, module_id: str) -> tuple[dict[str, Any], bytes]:
        with self.ctx.session() as session:
            row = session.get(ModuleRow, module_id)
            if row is None:
                raise NotFound(f"no module {module_id!r}")
            if row.package_blob is None:
                raise InvalidInput(f"module {module_id} has no package: {'; '.join(row.reasons)}")
            return module_view(row), self.ctx.blobs.get(row.package_blob)

    # -- import -------------------------------------------------------------------------------

    def import_file(
        self, path: Path, *, name: str | None = None, dataset: str | None = None, progress: Progress = _quiet
    ) -> dict[str, Any]:
        """Bring a ``.tflite`` or ``.keras`` model from elsewhere into the lifecycle.

        A ``.tflite`` becomes a model with one variant, inspected and measured like ours (and scored
        on the dataset's test split when ``dataset`` is given). A ``.keras`` becomes a model that
        ``squeeze`` can convert; ``dataset`` is then required for int8 calibration and scoring.
        """
        if not path.is_file():
            raise InvalidInput(f"{path}: no such file")
        if path.stat().st_size > self.ctx.settings.max_import_bytes:
            raise InvalidInput(
                f"{path}: larger than the import limit of {self.ctx.settings.max_import_bytes} bytes"
            )
        data = path.read_bytes()
        suffix = path.suffix.lower()
        loaded = None
        if dataset is not None:
            loaded = self.datasets.load(self.datasets.snapshot(dataset), seed=self.ctx.settings.seed)
        model_name = name or path.stem
        if suffix == ".tflite":
            return self._import_tflite(path, data, model_name, loaded, progress)
        if suffix == ".keras":
            return self._import_keras(path, data, model_name, loaded)
        raise UnsupportedModel(f"{path}: unknown model format {suffix!r}; import a .tflite or a .keras file")

    def _check_shapes(
        self, path: Path, spec: DatasetSpec, input_shape: tuple[int, ...], outputs: int
    ) -> None:
        if tuple(input_shape) != spec.input_shape:
            raise InvalidInput(
                f"{path}: the model takes inputs of shape {tuple(input_shape)}, the dataset's samples "
                f"have shape {spec.input_shape}"
            )
        if spec.task is Task.CLASSIFICATION and outputs != len(spec.labels):
            raise InvalidInput(
                f"{path}: the model has {outputs} outputs, the dataset has {len(spec.labels)} classes"
            )

    def _import_tflite(
        self, path: Path, data: bytes, name: str, loaded: LoadedSnapshot | None, progress: Progress
    ) -> dict[str, Any]:
        info = inspect_tflite(data, name=str(path))
        evaluation = None
        if loaded is not None:
            outputs = info.outputs[0].shape[-1] if info.outputs[0].shape else 1
            self._check_shapes(path, loaded.spec, info.inputs[0].shape[1:], outputs)
            evaluation = Evaluation(loaded.spec.task, loaded.arrays.x_test, loaded.arrays.y_test)
        variant = assess(
            data,
            evaluation,
            max_arena_bytes=self.ctx.settings.arena_search_max_bytes,
            name=str(path),
            progress=progress,
        )
        if len(variant.runtime_errors) == 2:
            raise UnsupportedModel(
                f"{path}: no runtime can run this model: {'; '.join(variant.runtime_errors.values())}"
            )
        # The run records the score of the imported bytes in the runtime that ships them.
        measured = variant.metrics.get("tflm") or variant.metrics.get("litert")
        with self.ctx.session() as session:
            model = self._new_model(
                session,
                name,
                path,
                loaded,
                arch="imported-tflite",
                params=info.params,
                run_metric=measured.as_dict() if measured else None,
            )
        view = self._store_variant(model["id"], variant, loaded.snapshot_id if loaded else None)
        return {**model, "variants": [view]}

    def _import_keras(
        self, path: Path, data: bytes, name: str, loaded: LoadedSnapshot | None
    ) -> dict[str, Any]:
        if loaded is None:
            raise InvalidInput(
                f"{path}: importing a Keras model needs --dataset (for int8 calibration and scoring)"
            )
        model = _keras_io.from_bytes(data, name=str(path))
        self._check_shapes(path, loaded.spec, tuple(model.input_shape[1:]), int(model.output_shape[-1]))
        predictions = model.predict(loaded.arrays.x_test, verbose=0)
        metric = score(loaded.spec.task, loaded.arrays.y_test, predictions)
        blob = self.ctx.blobs.put(data)
        with self.ctx.session() as session:
            return self._new_model(
                session,
                name,
                path,
                loaded,
                arch="imported-keras",
                params=int(model.count_params()),
                keras_blob=blob,
                float_metric=metric.as_dict(),
                run_metric=metric.as_dict(),
            )

    def _new_model(
        self,
        session: Session,
        name: str,
        path: Path,
        loaded: LoadedSnapshot | None,
        *,
        arch: str,
        params: int,
        keras_blob: str | None = None,
        float_metric: dict[str, Any] | None = None,
        run_metric: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        run_id = None
        if loaded is not None and run_metric is not None:
            # An evaluation-only run ties the imported model to the snapshot it was scored on.
            run = TrainingRunRow(
                id=new_id("run"),
                snapshot_id=loaded.snapshot_id,
                recipe={"imported": path.name, "seed": self.ctx.settings.seed},
                split_counts=loaded.split_counts,
                history={},
                metric_name=run_metric["name"],
                metric_value=run_metric["value"],
                epochs_run=0,
                duration_s=0.0,
            )
            session.add(run)
            session.flush()
            run_id = run.id
        row = ModelRow(
            id=new_id("mdl"),
            name=name,
            version=self._next_version(session, name),
            origin="imported",
            training_run_id=run_id,
            dataset_id=loaded.dataset_id if loaded else None,
            keras_blob=keras_blob,
            arch=arch,
            params=params,
            spec=spec_to_dict(loaded.spec) if loaded else None,
            float_metric=float_metric,
            source_file=str(path),
        )
        session.add(row)
        session.flush()
        return model_view(row)

    # -- listing ------------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        with self.ctx.session() as session:
            rows = session.scalars(select(ModelRow).order_by(ModelRow.name, ModelRow.version)).all()
            return [model_view(r) for r in rows]

    def show_model(self, ref: str) -> dict[str, Any]:
        with self.ctx.session() as session:
            model = self._model(session, ref)
            variants = session.scalars(
                select(VariantRow).where(VariantRow.model_id == model.id).order_by(VariantRow.created_at)
            ).all()
            modules = session.scalars(
                select(ModuleRow)
                .where(ModuleRow.variant_id.in_([v.id for v in variants]))
                .order_by(ModuleRow.created_at)
            ).all()
            run = session.get(TrainingRunRow, model.training_run_id) if model.training_run_id else None
            return {
                **model_view(model),
                "spec": model.spec,
                "run": run_view(run) if run else None,
                "variants": [variant_view(v) for v in variants],
                "modules": [module_view(m) for m in modules],
            }
