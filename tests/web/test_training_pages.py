"""The Training pages: start a run from the form, follow its job live, read its curves and confusion."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from helpers.seeding import log_in
from helpers.waiting import wait_for_job
from tinymlaas.data.generators.gestures import LABELS
from tinymlaas.jobs import LocalProcessExecutor
from tinymlaas.jobs.service import count_jobs
from tinymlaas.server.app import create_app
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.runs import show_run
from tinymlaas.services.training import train_model
from tinymlaas.settings import Settings


@dataclass(frozen=True)
class Pages:
    context: Context
    scientist: TestClient
    viewer: TestClient


@pytest.fixture(scope="module")
def pages(tmp_path_factory) -> Iterator[Pages]:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("training-pages") / "data"))
    datasets = DatasetService(context)
    datasets.generate("gestures", "gestures", samples=60, seed=1)
    datasets.generate("sine", "sine", samples=100, seed=1)
    executor = LocalProcessExecutor(context.settings, max_workers=2)
    app = create_app(context, executor)
    try:
        with TestClient(app) as scientist, TestClient(app) as viewer:
            for client, role in ((scientist, Role.DATA_SCIENTIST), (viewer, Role.VIEWER)):
                secret = create_token(context, role, f"web {role}")[1]
                assert log_in(client, secret).status_code == 303
            yield Pages(context, scientist, viewer)
    finally:
        executor.shutdown()


def _live(page: str) -> str:
    """The opening tag of the element live.js re-fetches."""
    return re.search(r'<div id="live"[^>]*>', page).group(0)


def _figures(page: str, testid: str) -> list[dict]:
    pattern = rf'data-testid="{testid}" data-figure="([^"]*)"'
    return [json.loads(html.unescape(match)) for match in re.findall(pattern, page)]


def _start(pages: Pages, **form: str) -> str:
    response = pages.scientist.post("/training", data=form, follow_redirects=False)
    assert response.status_code == 303, response.text
    location = response.headers["location"]
    assert location.startswith("/training/jobs/job_")
    return location.rsplit("/", 1)[1]


def test_the_form_offers_datasets_and_the_model_zoo(pages) -> None:
    page = pages.scientist.get("/training").text
    assert 'data-testid="train-form"' in page
    for option in ('value="gestures"', 'value="sine"', 'value="cnn1d"', 'value="dense"', 'value="mobilenet"'):
        assert option in page


def test_a_run_started_from_the_form_shows_progress_curves_and_a_confusion_matrix(pages) -> None:
    job_id = _start(pages, dataset="gestures", arch="cnn1d", epochs="2", seed="3")
    first = pages.scientist.get(f"/training/jobs/{job_id}").text
    # The worker has yet to load TensorFlow, let alone train: the page polls while the job runs.
    assert re.search(r'data-testid="job-state">(queued|running)<', first)
    assert "data-poll" in _live(first) and 'data-testid="job-cancel"' in first

    job = wait_for_job(pages.context, job_id, lambda j: j["state"] in {"succeeded", "failed"})
    assert job["state"] == "succeeded", job["error"]
    done = pages.scientist.get(f"/training/jobs/{job_id}").text
    assert "data-poll" not in _live(done)
    assert 'data-testid="job-cancel"' not in done
    assert "epoch 2/2" in done
    run_id = job["result"]["run"]["id"]
    assert f'href="/training/runs/{run_id}"' in done
    assert run_id in pages.viewer.get("/training").text

    run = show_run(pages.context, run_id)
    page = pages.viewer.get(f"/training/runs/{run_id}").text
    curves = {figure["layout"]["title"]["text"]: figure for figure in _figures(page, "run-curve")}
    assert set(curves) == {"loss per epoch", "accuracy per epoch"}
    loss = {trace["name"]: trace["y"] for trace in curves["loss per epoch"]["data"]}
    assert loss == {"train": run["history"]["loss"], "validation": run["history"]["val_loss"]}
    [confusion] = _figures(page, "run-confusion")
    heatmap = confusion["data"][0]
    assert heatmap["type"] == "heatmap"
    assert heatmap["x"] == heatmap["y"] == list(LABELS)
    assert heatmap["z"] == run["confusion_matrix"]["counts"]
    assert sum(map(sum, heatmap["z"])) == run["split_counts"]["test"]


def test_a_regression_run_says_it_has_no_confusion_matrix(pages) -> None:
    run_id = train_model(pages.context, "sine", epochs=1)["run"]["id"]
    page = pages.viewer.get(f"/training/runs/{run_id}").text
    assert 'data-testid="run-no-confusion"' in page and "regression" in page
    assert not _figures(page, "run-confusion")
    assert {f["layout"]["title"]["text"] for f in _figures(page, "run-curve")} == {
        "loss per epoch",
        "mae per epoch",
    }


def test_a_running_job_can_be_cancelled_from_its_page(pages) -> None:
    job_id = _start(pages, dataset="sine", epochs="100000")
    wait_for_job(pages.context, job_id, lambda j: j["state"] == "running")
    running = pages.scientist.get(f"/training/jobs/{job_id}").text
    assert "data-poll" in _live(running) and 'data-testid="job-cancel"' in running
    assert 'data-testid="job-cancel"' not in pages.viewer.get(f"/training/jobs/{job_id}").text
    assert pages.viewer.post(f"/training/jobs/{job_id}/cancel").status_code == 403

    cancelled = pages.scientist.post(f"/training/jobs/{job_id}/cancel", follow_redirects=False)
    assert cancelled.status_code == 303 and cancelled.headers["location"] == f"/training/jobs/{job_id}"
    page = pages.scientist.get(f"/training/jobs/{job_id}").text
    assert "data-poll" not in _live(page)
    assert re.search(r'data-testid="job-state">cancelled<', page)
    again = pages.scientist.post(f"/training/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert 'class="flash error"' in again.text and "already ended" in again.text


@pytest.mark.parametrize(
    ("form", "named"),
    [
        ({"dataset": "gestures", "epochs": "many"}, "epochs"),
        ({"dataset": "gestures", "arch": "dense"}, "dense"),
        ({"dataset": "nope"}, "nope"),
        ({"dataset": ""}, "dataset"),
    ],
)
def test_a_bad_form_is_shown_again_with_why_and_nothing_is_queued(pages, form, named) -> None:
    before = count_jobs(pages.context)
    response = pages.scientist.post("/training", data=form)
    assert response.status_code == 422
    flash = re.search(r'class="flash error"[^>]*>([^<]*)<', response.text).group(1)
    assert named in html.unescape(flash)
    assert count_jobs(pages.context) == before
    if form.get("epochs"):
        assert f'value="{form["epochs"]}"' in response.text  # what was typed is kept


def test_a_viewer_sees_no_form_and_may_not_start_a_run(pages) -> None:
    assert 'data-testid="train-form"' not in pages.viewer.get("/training").text
    refused = pages.viewer.post("/training", data={"dataset": "sine"})
    assert refused.status_code == 403 and "training:write" in refused.text


def test_unknown_jobs_and_runs_are_404_pages_and_a_login_is_needed(pages) -> None:
    assert pages.viewer.get("/training/jobs/job_missing").status_code == 404
    assert pages.viewer.get("/training/runs/run_missing").status_code == 404
    with TestClient(pages.scientist.app) as anonymous:
        response = anonymous.get("/training", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
