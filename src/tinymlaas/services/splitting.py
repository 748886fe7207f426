"""Split a model between a device and the node behind it: plan every cut, then build the chosen one.

Planning costs every valid cut (``split.planner``) and keeps the result. Building a cut makes two
models, ``<model>-head<k>`` and ``<model>-tail<k>``, each with one int8 variant (the exact operators
of the unsplit model on each side), compiles the head for the device and the tail for the next node
with the usual compilers, and measures the end-to-end accuracy on the test split by running the
built modules one after the other: the head module's own code (the native module built for this
host, or TFLM on the module's model) and the tail in LiteRT, the runtime a gateway runs.
"""

from __future__ import annotations

import io
import zipfile
from typing import Any

import numpy as np

from tinymlaas.catalog.board import Board
from tinymlaas.compilers.native import HostModule
from tinymlaas.data.scaling import InputScaling
from tinymlaas.errors import InvalidInput
from tinymlaas.metrics import score
from tinymlaas.services.compiling import compile_module
from tinymlaas.services.context import Context, new_id
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.squeezing import store_variant
from tinymlaas.split.cuts import split_model
from tinymlaas.split.planner import parse_chain, plan_split
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.squeeze.runtimes import LiteRtRunner, Runner, TflmRunner, dequantize, quantize
from tinymlaas.squeeze.variants import Progress, assess, no_progress
from tinymlaas.storage.repositories import ModelRepository, SplitPlanRepository
from tinymlaas.storage.tables import ModelRow, SplitPlanRow, VariantRow

__all__ = ["build_split", "list_splits", "plan_model_split", "show_split"]

# Test samples run through the built parts for the end-to-end accuracy.
MAX_ACCURACY_SAMPLES = 1_000


def _tflm(tflite: bytes, arena_bytes: int | None) -> TflmRunner | None:
    """TFLM on this host with the measured arena and room to spare; None where TFLM cannot run the
    model (no arena was found), since loading it anyway would abort the process."""
    if arena_bytes is None:
        return None
    info = inspect_tflite(tflite)
    return TflmRunner(tflite, info.inputs[0], info.outputs[0], arena_bytes=2 * arena_bytes + 16 * 1024)


def _int8_variant(model: ModelRow) -> VariantRow:
    variants = [v for v in model.variants if v.quantization == "int8"]
    if not variants:
        raise InvalidInput(
            f"Model {model.name} v{model.version} has no int8 variant to split; run `tinymlaas squeeze "
            f"{model.name}` first (a device runs the head in int8, so the cut is made in the int8 model)"
        )
    return variants[-1]


def _view(row: SplitPlanRow, model: ModelRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "model": {"id": model.id, "name": model.name, "version": model.version},
        "variant": row.variant_id,
        "created_at": row.created_at.isoformat(),
        **row.plan,
        "build": row.build,
    }


def plan_model_split(
    ctx: Context,
    model_ref: str,
    chain: str,
    *,
    objective: str = "latency",
    progress: Progress = no_progress,
) -> dict[str, Any]:
    """Cost every valid cut of the model's int8 variant on ``chain`` and keep the plan."""
    parsed = parse_chain(chain, ctx.catalog)
    with ctx.session() as session:
        model = ModelRepository(session).model(model_ref)
        variant = _int8_variant(model)
        model_id, variant_id, blob = model.id, variant.id, variant.tflite_blob
    plan = plan_split(ctx.blobs.get(blob), parsed, ctx.catalog, objective=objective, progress=progress)
    with ctx.session() as session:
        row = SplitPlanRepository(session).add(
            SplitPlanRow(
                id=new_id("spl"),
                model_id=model_id,
                variant_id=variant_id,
                chain=parsed.spec,
                objective=objective,
                chosen=plan.chosen,
                plan=plan.as_dict(),
            )
        )
        return _view(row, ModelRepository(session).model(model_id))


def show_split(ctx: Context, plan_id: str) -> dict[str, Any]:
    with ctx.session() as session:
        row = SplitPlanRepository(session).get(plan_id)
        return _view(row, ModelRepository(session).model(row.model_id))


def list_splits(ctx: Context, model_ref: str | None = None) -> list[dict[str, Any]]:
    with ctx.session() as session:
        repo = ModelRepository(session)
        model_id = repo.model(model_ref).id if model_ref is not None else None
        return [
            _view(row, repo.model(row.model_id)) for row in SplitPlanRepository(session).for_model(model_id)
        ]


def _part_model(
    ctx: Context, parent: ModelRow, name: str, tflite: bytes, scaling: dict[str, Any] | None, role: str
) -> str:
    """A model row for one part, its lineage in ``arch`` and ``source_file``."""
    info = inspect_tflite(tflite, name=name)
    with ctx.session() as session:
        repo = ModelRepository(session)
        row = repo.add(
            ModelRow(
                id=new_id("mdl"),
                name=name,
                version=repo.next_version(name, sandbox=parent.sandbox),
                origin="imported",
                training_run_id=None,
                dataset_id=parent.dataset_id,
                keras_blob=None,
                arch=f"split-{role}",
                params=info.params,
                spec=parent.spec if role == "tail" else None,
                input_scaling=scaling,
                source_file=f"split of {parent.name} v{parent.version} ({parent.id})",
                sandbox=parent.sandbox,
            )
        )
        return row.id


def _module_runner(
    ctx: Context, module: dict[str, Any], tflite: bytes, arena_bytes: int | None
) -> Runner | HostModule | None:
    """What the node runs: the native module's C built for this host, else its runtime on the model."""
    if module["runtime"] == "native":
        with zipfile.ZipFile(io.BytesIO(ctx.blobs.get(module["package"]))) as archive:
            files = {name: archive.read(name) for name in archive.namelist()}
        return HostModule(files)
    info = inspect_tflite(tflite)
    if module["runtime"] == "litert":
        return LiteRtRunner(tflite, info.inputs[0], info.outputs[0])
    return _tflm(tflite, arena_bytes)


def _raw(runner: Runner | HostModule, x: np.ndarray) -> np.ndarray:
    return runner.run(x) if isinstance(runner, HostModule) else runner.run_raw(x)


def _accuracy(
    ctx: Context,
    parent: ModelRow,
    full: bytes,
    parts: tuple[Runner | HostModule, Runner | HostModule],
    head_tflite: bytes,
    references: tuple[TflmRunner, TflmRunner | None],
    tail_runtime: str,
) -> dict[str, Any] | None:
    """Top-1 on the test split through the two built parts, and through the unsplit int8 in TFLM.

    The tail also runs in TFLM beside its own runtime: head module then TFLM tail must give the
    unsplit model's outputs exactly (the cut moves no arithmetic); the tail's own runtime (LiteRT on
    a gateway) may round a few outputs differently, which the differences count.
    """
    unsplit, reference_tail = references
    if parent.training_run_id is None or parent.spec is None:
        return None
    with ctx.session() as session:
        run = ModelRepository(session).run(parent.training_run_id)
        snapshot_id, seed = run.snapshot_id, int(run.recipe.get("seed", 0))
    loaded = DatasetService(ctx).load(snapshot_id, seed=seed)
    x_test = loaded.arrays.x_test[:MAX_ACCURACY_SAMPLES]
    y_test = loaded.arrays.y_test[:MAX_ACCURACY_SAMPLES]
    if len(x_test) == 0:
        return None
    scaling = InputScaling.from_dict(parent.input_scaling)
    info, head_info = inspect_tflite(full), inspect_tflite(head_tflite)
    head, tail = parts
    split_raw, full_raw, exact = [], [], True
    for x in x_test:
        q = quantize(scaling.apply(np.asarray(x, np.float32)).reshape(info.inputs[0].shape), info.inputs[0])
        middle = np.asarray(_raw(head, q), np.int8).reshape(head_info.outputs[0].shape)
        split_raw.append(np.asarray(_raw(tail, middle)).reshape(-1))
        full_raw.append(np.asarray(unsplit.run_raw(q)).reshape(-1))
        if reference_tail is not None:
            exact = exact and np.array_equal(reference_tail.run_raw(middle).reshape(-1), full_raw[-1])
    task = loaded.spec.task
    split_metric = score(task, y_test, dequantize(np.stack(split_raw), info.outputs[0]))
    full_metric = score(task, y_test, dequantize(np.stack(full_raw), info.outputs[0]))
    differences = np.abs(np.stack(split_raw).astype(np.int32) - np.stack(full_raw).astype(np.int32))
    return {
        "metric": split_metric.name,
        "split": split_metric.value,
        "unsplit": full_metric.value,
        "samples": len(x_test),
        "outputs_differing": int(np.count_nonzero(differences.max(axis=1))),
        "max_output_difference": int(differences.max()),
        "exact_with_tflm_tail": bool(exact) if reference_tail is not None else None,
        "basis": (
            f"measured on {len(x_test)} test samples: the head module then the tail module "
            f"({tail_runtime}), against the unsplit int8 model in TFLM; output differences in int8 steps"
        ),
    }


def _device_runtime(board: Board) -> str:
    return "native" if "native" in board.runtimes else board.runtimes[0]


def build_split(
    ctx: Context, plan_id: str, *, cut: int | None = None, progress: Progress = no_progress
) -> dict[str, Any]:
    """Make the head and tail of cut ``cut`` (the plan's choice by default) and compile both."""
    with ctx.session() as session:
        row = SplitPlanRepository(session).get(plan_id)
        repo = ModelRepository(session)
        parent = repo.model(row.model_id)
        variant = repo.variant(row.variant_id)
        chain_spec, chosen, blob = row.chain, row.chosen, variant.tflite_blob
        full_arena = variant.arena_bytes
        candidates = {c["index"]: c for c in row.plan["candidates"]}
        operators = int(row.plan["operators"])
        session.expunge(parent)
    index = chosen if cut is None else cut
    if index is None:
        raise InvalidInput(
            f"No cut of plan {plan_id} fits the device; name one with --cut to build it anyway"
        )
    if index not in candidates:
        raise InvalidInput(f"Cut {index} is not a valid cut of this model; valid cuts: {sorted(candidates)}")
    if index in (0, operators):
        where = "the next node" if index == 0 else "the device"
        raise InvalidInput(
            f"Cut {index} puts the whole model on {where}: compile and deploy the model itself there"
        )
    chain = parse_chain(chain_spec, ctx.catalog)
    full = ctx.blobs.get(blob)
    head_tflite, tail_tflite = split_model(full, index)
    assert head_tflite is not None and tail_tflite is not None
    built: dict[str, Any] = {"cut": index, "label": candidates[index]["label"]}
    modules = []
    arenas: list[int | None] = []
    for role, tflite, scaling, board in (
        ("head", head_tflite, parent.input_scaling, chain.device),
        ("tail", tail_tflite, None, chain.remote),
    ):
        progress(f"{role}: measuring the part in TFLM and LiteRT")
        model_id = _part_model(ctx, parent, f"{parent.name}-{role}{index}", tflite, scaling, role)
        squeezed = assess(
            tflite,
            None,
            max_arena_bytes=ctx.settings.arena_search_max_bytes,
            name=f"{parent.name} {role} at cut {index}",
            scaling=InputScaling.from_dict(scaling),
            method=variant.method,
            progress=progress,
        )
        part_variant = store_variant(ctx, model_id, squeezed, None)
        arenas.append(squeezed.arena.arena_bytes)
        runtime = _device_runtime(board) if role == "head" else board.runtimes[0]
        progress(f"{role}: compiling for {board.id} ({runtime})")
        module = compile_module(ctx, part_variant["id"], board.id, runtime=runtime, progress=progress)
        modules.append(module)
        built[role] = {
            "model": model_id,
            "variant": part_variant["id"],
            "module": module["id"],
            "board": board.id,
            "runtime": module["runtime"],
            "fits": module["fits"],
            "reasons": module["reasons"],
            "bytes": len(tflite),
        }
    progress("measuring end-to-end accuracy through the built parts")
    head = _module_runner(ctx, modules[0], head_tflite, arenas[0]) if modules[0]["package"] else None
    tail = _module_runner(ctx, modules[1], tail_tflite, arenas[1]) if modules[1]["package"] else None
    unsplit = _tflm(full, full_arena)
    built["accuracy"] = None
    if head is not None and tail is not None and unsplit is not None:
        built["accuracy"] = _accuracy(
            ctx,
            parent,
            full,
            (head, tail),
            head_tflite,
            (unsplit, _tflm(tail_tflite, arenas[1])),
            modules[1]["runtime"],
        )
    with ctx.session() as session:
        row = SplitPlanRepository(session).get(plan_id)
        row.head_model_id, row.tail_model_id = built["head"]["model"], built["tail"]["model"]
        row.build = built
        session.flush()
        return _view(row, ModelRepository(session).model(row.model_id))
