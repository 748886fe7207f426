"""Dry runs for tests: one run for real in this process, or one written straight to the store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime

from tinymlaas.jobs.params import parse_params
from tinymlaas.jobs.records import JobReporter, move
from tinymlaas.jobs.runners import run
from tinymlaas.jobs.service import show_job
from tinymlaas.jobs.states import JobKind, JobState
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import JobRow, ModelRow, ModuleRow, TrainingRunRow, VariantRow


def run_in_process(context: Context, job_id: str) -> dict:
    """Run a queued job here as its worker process would, and return the job as it ended."""
    job = show_job(context, job_id)
    assert move(context, job_id, JobState.RUNNING)
    result = run(context, parse_params(JobKind(job["kind"]), job["params"]), JobReporter(context, job_id))
    move(
        context, job_id, JobState.SUCCEEDED, progress=1.0, result=json.loads(json.dumps(result, default=str))
    )
    return show_job(context, job_id)


@dataclass(frozen=True)
class SeededDryRun:
    job: str
    dataset: str
    model: str
    variant: str
    module: str
    package_blob: str  # named by the module only


def seed_dry_run(context: Context, job_id: str = "job_dry") -> SeededDryRun:
    """A finished dry run without training: a sandbox dataset and snapshot, a run on it, a sandbox model
    with a variant and a fitting pico module, and the lifecycle job that reports them."""
    dataset = f"dry-run-sine-{job_id}"
    datasets = DatasetService(context)
    datasets.generate(dataset, "sine", samples=20, seed=2, sandbox=True)
    snapshot = datasets.snapshot(dataset)
    dataset_id = datasets.show(dataset).id
    package = context.blobs.put(f"package of {job_id}".encode())
    now = datetime.now(UTC)
    with context.session() as session:
        repo = ModelRepository(session)
        run_row = repo.add(
            TrainingRunRow(
                id=f"run_{job_id}", snapshot_id=snapshot, recipe={}, split_counts={}, history={},
                metric_name="mse", metric_value=0.1, epochs_run=1, duration_s=1.0,
            )
        )  # fmt: skip
        repo.add(
            ModelRow(
                id=f"mdl_{job_id}", name=dataset, version=repo.next_version(dataset, sandbox=True),
                origin="trained", training_run_id=run_row.id, dataset_id=dataset_id, arch="dense",
                params=10, float_metric={"name": "mse", "value": 0.1}, sandbox=True,
            )
        )  # fmt: skip
        repo.add(
            VariantRow(
                id=f"var_{job_id}", model_id=f"mdl_{job_id}", quantization="int8", tflite_blob="0" * 64,
                size_bytes=100, info={"ops": [], "layers": [], "inputs": [], "outputs": []},
                arena_bytes=1024, arena_tries=1, metrics={}, runtime_errors={}, selftests={},
            )
        )  # fmt: skip
        repo.add(
            ModuleRow(
                id=f"mod_{job_id}", variant_id=f"var_{job_id}", board_id="pico", compiler="tflm",
                runtime="tflm", package_blob=package, manifest={"board": "pico"}, flash_bytes=2000,
                ram_bytes=1024, fits=True, reasons=[],
            )
        )  # fmt: skip
        metric = {"name": "mse", "value": 0.1}
        verdict = {
            "board": "pico", "quantization": "int8", "runtime": "tflm", "module": f"mod_{job_id}",
            "variant": f"var_{job_id}", "flash_bytes": 2000, "ram_bytes": 1024,
            "metric": {"name": "mse", "value": 0.12}, "fits": True, "reasons": [],
        }  # fmt: skip
        session.add(
            JobRow(
                id=job_id, kind="lifecycle", params={"dataset": dataset, "boards": ["pico"]},
                state="succeeded", progress=1.0, message="done", log="", phase="compile",
                result={"model": f"mdl_{job_id}", "arch": "dense", "float_metric": metric,
                        "variants": [verdict], "timings_s": {}},
                created_at=now, updated_at=now, finished_at=now,
            )
        )  # fmt: skip
    return SeededDryRun(job_id, dataset, f"mdl_{job_id}", f"var_{job_id}", f"mod_{job_id}", package)
