"""Training runs over HTTP: runs recorded by real (tiny) training, and starting one as a job."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers.servers import Api, serve
from tinymlaas.data.generators.gestures import LABELS
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.training import train_model
from tinymlaas.settings import Settings


@pytest.fixture(scope="module")
def runs_api(tmp_path_factory) -> Iterator[Api]:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("training") / "data"))
    datasets = DatasetService(context)
    datasets.generate("gestures", "gestures", samples=60, seed=1)
    datasets.generate("sine", "sine", samples=100, seed=1)
    train_model(context, "sine", epochs=1)
    train_model(context, "gestures", epochs=2)
    with serve(context) as api:
        yield api


def _runs(api: Api, **params: str) -> dict:
    response = api.client.get("/training-runs", params=params, headers=api.auth(Role.VIEWER))
    assert response.status_code == 200, response.text
    return response.json()


def test_runs_are_listed_newest_first_with_the_model_they_made(runs_api) -> None:
    listed = _runs(runs_api)
    assert listed["count"] == 2
    assert [r["dataset"] for r in listed["data"]] == ["gestures", "sine"]
    gestures = listed["data"][0]
    assert gestures["task"] == "classification" and gestures["arch"] == "cnn1d"
    assert gestures["model"]["name"] == "gestures" and gestures["model"]["version"] == 1
    assert sum(gestures["split_counts"].values()) == 60
    assert gestures["recipe"]["epochs"] == 2
    assert "history" not in gestures
    only = _runs(runs_api, dataset="sine")
    assert only["count"] == 1 and only["data"][0]["task"] == "regression"
    assert _runs(runs_api, limit="1", offset="1")["data"][0]["dataset"] == "sine"


def test_a_classification_run_has_curves_and_a_confusion_matrix_on_its_test_split(runs_api) -> None:
    run_id = _runs(runs_api, dataset="gestures")["data"][0]["id"]
    run = runs_api.client.get(f"/training-runs/{run_id}", headers=runs_api.auth(Role.VIEWER)).json()
    assert {"loss", "val_loss", "accuracy", "val_accuracy"} <= set(run["history"])
    assert all(len(values) == run["epochs_run"] for values in run["history"].values())
    matrix = run["confusion_matrix"]
    assert matrix["labels"] == list(LABELS)
    counts = matrix["counts"]
    assert len(counts) == len(LABELS) and all(len(row) == len(LABELS) for row in counts)
    tested = run["split_counts"]["test"]
    assert sum(map(sum, counts)) == tested
    # Each true class appears as often as the test split holds it, and the diagonal is the accuracy.
    assert all(sum(row) >= 1 for row in counts)
    hits = sum(counts[i][i] for i in range(len(LABELS)))
    assert hits / tested == pytest.approx(run["metric"]["value"])
    assert run["metric"]["name"] == "accuracy"


def test_a_regression_run_has_no_confusion_matrix(runs_api) -> None:
    run_id = _runs(runs_api, dataset="sine")["data"][0]["id"]
    run = runs_api.client.get(f"/training-runs/{run_id}", headers=runs_api.auth(Role.VIEWER)).json()
    assert run["confusion_matrix"] is None
    assert run["metric"]["name"] == "mse"
    assert set(run["history"]) >= {"loss", "val_loss", "mae", "val_mae"}


def test_starting_a_run_queues_a_train_job(runs_api, problem) -> None:
    body = {"dataset": "gestures", "arch": "cnn1d", "epochs": 3, "seed": 9}
    response = runs_api.client.post("/training-runs", json=body, headers=runs_api.auth(Role.DATA_SCIENTIST))
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "train" and job["state"] == "queued" and job["params"] == body
    shown = runs_api.client.get(f"/jobs/{job['id']}", headers=runs_api.auth(Role.VIEWER)).json()
    assert shown["params"] == body
    defaults = runs_api.client.post(
        "/training-runs", json={"dataset": "sine"}, headers=runs_api.auth(Role.ADMIN)
    ).json()
    assert defaults["params"] == {"dataset": "sine"}


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"dataset": "nope"}, "nope"),
        ({"dataset": "gestures", "arch": "dense"}, "dense"),
        ({"dataset": "gestures", "epochs": 0}, "epochs"),
        ({"dataset": "gestures", "seed": "x"}, "seed"),
        ({}, "dataset"),
    ],
)
def test_a_bad_run_request_is_422_naming_the_field(runs_api, problem, body, named) -> None:
    response = runs_api.client.post("/training-runs", json=body, headers=runs_api.auth(Role.DATA_SCIENTIST))
    assert named in problem(response, 422)["detail"]


def test_training_runs_need_tokens_and_permissions(runs_api, problem) -> None:
    problem(runs_api.client.get("/training-runs"), 401)
    problem(runs_api.client.post("/training-runs", json={"dataset": "sine"}), 401)
    for role in (Role.VIEWER, Role.OPERATOR):
        response = runs_api.client.post(
            "/training-runs", json={"dataset": "sine"}, headers=runs_api.auth(role)
        )
        assert "training:write" in problem(response, 403)["detail"]
    problem(runs_api.client.get("/training-runs/run_missing", headers=runs_api.auth(Role.VIEWER)), 404)
