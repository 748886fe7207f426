"""One parameter model per job kind: checked once at submission, parsed back unchanged by the worker."""

from __future__ import annotations

import pytest

from tinymlaas.errors import InvalidInput
from tinymlaas.jobs.params import PARAMS, LifecycleParams, SqueezeParams, TrainParams, parse_params
from tinymlaas.jobs.service import show_job, submit_job
from tinymlaas.jobs.states import JobKind
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.squeeze.convert import Quantization


@pytest.fixture
def context(tmp_path) -> Context:
    return Context(Settings(data_dir=tmp_path / "data"))


def test_every_kind_has_a_model() -> None:
    assert set(PARAMS) == set(JobKind)


def test_parameters_become_typed_values_and_unset_ones_are_not_stored() -> None:
    squeeze = parse_params(JobKind.SQUEEZE, {"model": "m", "quantizations": ["int8"]})
    assert isinstance(squeeze, SqueezeParams) and squeeze.quantizations == [Quantization.INT8]
    assert squeeze.stored() == {"model": "m", "quantizations": ["int8"]}
    train = parse_params(JobKind.TRAIN, {"dataset": "d", "arch": None, "epochs": 3})
    assert train == TrainParams(dataset="d", epochs=3) and train.stored() == {"dataset": "d", "epochs": 3}


@pytest.mark.parametrize(
    ("kind", "params", "message"),
    [
        (JobKind.TRAIN, {"dataset": None}, "needs 'dataset'"),
        (JobKind.TRAIN, {"dataset": "d", "seed": True}, "'seed' must be an integer"),
        (JobKind.TRAIN, {"dataset": 7}, "'dataset' must be a string"),
        (JobKind.LIFECYCLE, {"dataset": "d", "boards": "pico"}, "'boards' must be a list"),
        (JobKind.LIFECYCLE, {"dataset": "d", "boards": ["pico", 3]}, "'boards' must be a list of strings"),
        (JobKind.SQUEEZE, {"model": "m", "colour": "red"}, "takes no colour (it takes model, quantizations)"),
    ],
)
def test_a_wrong_parameter_is_named(kind: JobKind, params: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_params(kind, params)


def test_a_validated_model_is_stored_as_it_is_and_must_match_the_kind(context: Context) -> None:
    params = LifecycleParams(dataset="d", boards=["pico"], epochs=2)
    job = submit_job(context, JobKind.LIFECYCLE, params)
    assert show_job(context, job["id"])["params"] == {"dataset": "d", "boards": ["pico"], "epochs": 2}
    assert PARAMS[JobKind.LIFECYCLE].model_validate(job["params"]) == params  # what the worker reads back
    with pytest.raises(InvalidInput, match="a train job takes TrainParams, not LifecycleParams"):
        submit_job(context, JobKind.TRAIN, params)
