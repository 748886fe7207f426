"""The lifecycle trains on the very snapshot it took and reports."""

from __future__ import annotations

import numpy as np
import pytest

from tinymlaas.errors import InvalidInput
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.lifecycle import LifecyclePhase, run_lifecycle
from tinymlaas.services.runs import list_runs
from tinymlaas.services.training import train_model


class _Stop(Exception):
    """Ends the lifecycle once training is done: squeezing and compiling prove nothing here."""


def test_a_sample_arriving_after_the_snapshot_does_not_change_what_is_trained_on(context: Context) -> None:
    datasets = DatasetService(context)
    datasets.generate("gestures", "gestures", samples=60, seed=1)
    spec = datasets.show("gestures").spec
    taken: list[str] = []

    def on_phase(phase: LifecyclePhase) -> None:
        if phase is LifecyclePhase.TRAIN:
            (snapshot,) = datasets.snapshot_list("gestures")
            taken.append(snapshot.id)
            late = np.full(spec.input_shape, 0.25, dtype=np.float32)
            datasets.add_sample("gestures", late, label=spec.labels[0], source="late")
        if phase is LifecyclePhase.SQUEEZE:
            raise _Stop

    with pytest.raises(_Stop):
        run_lifecycle(context, "gestures", ["pico"], epochs=1, on_phase=on_phase)

    (run,) = list_runs(context)
    assert run["snapshot"] == taken[0]
    assert datasets.snapshot("gestures") != taken[0]  # the late sample is in any later snapshot


def test_training_refuses_a_snapshot_of_another_dataset(context: Context) -> None:
    datasets = DatasetService(context)
    datasets.generate("gestures", "gestures", samples=30, seed=1)
    datasets.generate("waves", "sine", samples=30, seed=1)
    with pytest.raises(InvalidInput, match="is of dataset 'waves', not 'gestures'"):
        train_model(context, "gestures", snapshot=datasets.snapshot("waves"), epochs=1)
