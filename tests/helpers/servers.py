"""Real uvicorn servers over a store of the test module's own, and a store seeded with real artifacts.

The package-wide ``api`` server's store is shared by every API test file; tests that add models,
runs or jobs use one of these instead, so the shared store stays as its tests expect it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx

from helpers.seeding import serving
from tinymlaas.jobs import Executor
from tinymlaas.server.app import create_app
from tinymlaas.services import _keras_io
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.compiling import compile_module
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.squeeze.inspect import inspect_tflite
from tinymlaas.storage.tables import ModelRow, TrainingRunRow, VariantRow

# Bigger than the Pico leaves for tensors (240 KiB), smaller than the Nucleo-L4R5ZI does (608 KiB).
SEEDED_ARENA_BYTES = 300_000


@dataclass(frozen=True)
class Api:
    client: httpx.Client
    context: Context
    tokens: dict[Role, str]

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@contextmanager
def serve(context: Context, executor: Executor | None = None) -> Iterator[Api]:
    tokens = {role: create_token(context, role, f"test {role}")[1] for role in Role}
    with (
        serving(create_app(context, executor)) as base,
        httpx.Client(base_url=f"{base}/api/v1", timeout=60) as client,
    ):
        yield Api(client, context, tokens)


@dataclass(frozen=True)
class Seeded:
    model: str
    run: str
    variant: str
    tflite: bytes
    fitting_module: str  # compiled for nucleo-l4r5zi
    too_big_module: str  # compiled for pico, whose RAM the seeded arena exceeds


def seed_artifacts(context: Context, tiny_models: Any) -> Seeded:
    """A gestures snapshot, a run on it, the tiny Keras model with its real int8 variant, and two
    real compiled modules; the run's figures and the arena are stored values, not measurements."""
    datasets = DatasetService(context)
    datasets.generate("gestures", "gestures", samples=40, seed=1)
    snapshot = datasets.snapshot("gestures")
    info = inspect_tflite(tiny_models.int8, name="int8")
    with context.session() as session:
        session.add(
            TrainingRunRow(
                id="run_seed", snapshot_id=snapshot, recipe={"arch": "cnn1d", "epochs": 2, "seed": 1},
                split_counts={"train": 28, "val": 6, "test": 6},
                history={"loss": [1.5, 1.2], "val_loss": [1.6, 1.4], "accuracy": [0.3, 0.5],
                         "val_accuracy": [0.2, 0.5]},
                metric_name="accuracy", metric_value=0.5, epochs_run=2, duration_s=1.5,
                confusion_matrix=None,
            )
        )  # fmt: skip
        session.flush()
        session.add(
            ModelRow(
                id="mdl_tiny", name="tiny", version=1, origin="trained", training_run_id="run_seed",
                keras_blob=context.blobs.put(_keras_io.to_bytes(tiny_models.keras_model)), arch="cnn1d",
                params=info.params, float_metric={"name": "accuracy", "value": 0.9},
            )
        )  # fmt: skip
        session.flush()
        session.add(
            VariantRow(
                id="var_tiny", model_id="mdl_tiny", quantization="int8",
                tflite_blob=context.blobs.put(tiny_models.int8), size_bytes=info.size_bytes,
                info=dataclasses.asdict(info), arena_bytes=SEEDED_ARENA_BYTES, arena_tries=1,
                metrics={"tflm": {"name": "accuracy", "value": 0.875}}, runtime_errors={}, selftests={},
                evaluated_on=snapshot,
            )
        )  # fmt: skip
    fitting = compile_module(context, "var_tiny", "nucleo-l4r5zi")
    too_big = compile_module(context, "var_tiny", "pico")
    assert fitting["fits"] and not too_big["fits"], (fitting, too_big)
    return Seeded("mdl_tiny", "run_seed", "var_tiny", tiny_models.int8, fitting["id"], too_big["id"])
