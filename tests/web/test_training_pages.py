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
from tinymlaas.jobs import JobKind, JobState, LocalProcessExecutor
from tinymlaas.jobs.records import JobReporter, move
from tinymlaas.jobs.service import count_jobs, show_job, submit_job
from tinymlaas.server.app import create_app
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.runs import show_run
from tinymlaas.services.training import train_model
from tinymlaas.settings import Settings
from tinymlaas.web.training_summaries import score_warning


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


CONFUSION_CELL = (
    r'data-testid="confusion-cell" data-true="([^"]+)" data-predicted="([^"]+)"[^>]*>\s*'
    r'<a href="([^"]+)" data-testid="confusion-link"\s+title="([^"]+)">(\d+)</a>'
)
"""A linked count in a run's confusion matrix: true and predicted class, link, its title and the count."""


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
    assert 'aria-live="polite"' in _live(done)
    job_curves = {figure["layout"]["title"]["text"]: figure for figure in _figures(done, "job-curve")}
    job_loss = {trace["name"]: trace["y"] for trace in job_curves["loss per epoch"]["data"]}
    assert job_loss == {"train": job["history"]["loss"], "validation": job["history"]["val_loss"]}
    assert len(job["history"]["loss"]) == 2
    run_id = job["result"]["run"]["id"]
    assert f'href="/training/runs/{run_id}"' in done
    assert run_id in pages.viewer.get("/training").text

    run = show_run(pages.context, run_id)
    page = pages.viewer.get(f"/training/runs/{run_id}").text
    curves = {figure["layout"]["title"]["text"]: figure for figure in _figures(page, "run-curve")}
    assert set(curves) == {"loss per epoch", "accuracy per epoch"}
    loss = {trace["name"]: trace["y"] for trace in curves["loss per epoch"]["data"]}
    assert loss == {"train": run["history"]["loss"], "validation": run["history"]["val_loss"]}
    assert loss == job_loss, "the job's live curves are the ones its run recorded"
    cells = re.findall(CONFUSION_CELL, page)
    assert [(true, predicted) for true, predicted, *_ in cells] == [(t, p) for t in LABELS for p in LABELS]
    counts = [int(n) for *_, n in cells]
    assert counts == [n for row in run["confusion_matrix"]["counts"] for n in row]
    assert sum(counts) == run["split_counts"]["test"]
    assert {href for _, _, href, _, _ in cells} == {f"/datasets/gestures?label={t}" for t in LABELS}
    title = html.unescape(cells[1][3])
    assert f"labelled {LABELS[0]}" in title and "predictions per sample are not stored" in title


def test_a_regression_run_says_it_has_no_confusion_matrix(pages) -> None:
    run_id = train_model(pages.context, "sine", epochs=1)["run"]["id"]
    page = pages.viewer.get(f"/training/runs/{run_id}").text
    assert 'data-testid="run-no-confusion"' in page and "regression" in page
    assert 'data-testid="confusion"' not in page
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


def test_a_running_job_draws_its_curves_from_the_epochs_reported_so_far(pages) -> None:
    job = submit_job(pages.context, JobKind.TRAIN, {"dataset": "sine", "epochs": 5})  # no executor: stays put
    assert move(pages.context, job["id"], JobState.RUNNING)
    reporter = JobReporter(pages.context, job["id"])
    waiting = pages.viewer.get(f"/training/jobs/{job['id']}").text
    assert 'data-testid="job-no-curves"' in waiting and not _figures(waiting, "job-curve")

    epochs = [{"loss": 0.9, "val_loss": 1.0, "mae": 0.7}, {"loss": 0.5, "val_loss": 0.8, "mae": 0.4}]
    for number, figures in enumerate(epochs, start=1):
        reporter.report(f"epoch {number}/5", number / 5, epoch=number, epochs=5, figures=figures)
        page = pages.viewer.get(f"/training/jobs/{job['id']}").text
        assert "data-poll" in _live(page) and 'aria-live="polite"' in _live(page)
        curves = {f["layout"]["title"]["text"]: f for f in _figures(page, "job-curve")}
        assert set(curves) == {"loss per epoch", "mae per epoch"}
        loss = {trace["name"]: trace["y"] for trace in curves["loss per epoch"]["data"]}
        so_far = epochs[:number]
        assert loss == {"train": [e["loss"] for e in so_far], "validation": [e["val_loss"] for e in so_far]}
        assert f"epoch {number} of 5 planned" in page
    assert show_job(pages.context, job["id"])["history"]["mae"] == [0.7, 0.4]
    described = html.unescape(re.search(r'aria-label="([^"]*)" data-testid="job-curve"', page).group(1))
    assert described.startswith(
        "Chart: loss per epoch; across epoch, up loss. train: 2 points from 0.9 to 0.5"
    )

    reporter.report("epoch 1/5", 0.2, epoch=1, epochs=5, figures={"loss": 0.3, "val_loss": 0.4})
    fresh = show_job(pages.context, job["id"])["history"]
    assert fresh == {"loss": [0.3], "val_loss": [0.4]}, "a second fit starts its curves afresh"
    move(pages.context, job["id"], JobState.CANCELLED)


def test_a_run_shows_its_recipe_as_fields_and_warns_when_its_test_split_is_small(pages) -> None:
    run_id = train_model(pages.context, "gestures", arch="cnn1d", epochs=1, seed=4)["run"]["id"]
    run = show_run(pages.context, run_id)
    page = pages.viewer.get(f"/training/runs/{run_id}").text
    recipe = dict(re.findall(r'<dt>([^<]+)</dt><dd data-field="[^"]+">([^<]*)</dd>', page))
    assert recipe["arch"] == "cnn1d" and recipe["epochs"] == "1" and recipe["seed"] == "4"
    assert recipe["learning rate"] == f"{run['recipe']['learning_rate']:g}"
    assert "&#34;arch&#34;" not in page, "no raw JSON"

    n = run["split_counts"]["test"]
    assert n < 30 and run["metric"]["n"] == n
    warning = html.unescape(re.search(r'data-testid="run-warning">([^<]*)<', page).group(1))
    assert f"Rests on only {n} test samples" in warning
    assert f"{100 * run['metric']['low']:.1f}–{100 * run['metric']['high']:.1f} %" in warning
    listed = pages.viewer.get("/training").text
    row = re.search(rf'data-run="{run_id}">(.*?)</tr>', listed, re.S).group(1)
    assert f"Rests on only {n} test samples" in html.unescape(row)


def test_the_warning_names_the_samples_a_score_rests_on() -> None:
    assert score_warning({"name": "accuracy", "value": 0.9, "n": 400, "low": 0.87, "high": 0.93}) is None
    wide = score_warning({"name": "accuracy", "value": 0.7, "n": 40, "low": 0.55, "high": 0.82})
    assert wide == (
        "Rests on 40 test samples: its 95 % interval is 27 points wide (55.0–82.0 %), "
        "so runs closer than that cannot be told apart."
    )
    few = score_warning({"name": "mse", "value": 0.01, "n": 12})
    assert few is not None and few.startswith("Rests on only 12 test samples")
    assert score_warning({"name": "mse", "value": 0.01, "n": 300}) is None
    assert score_warning(None) is None


def test_ticked_runs_are_compared_side_by_side(pages) -> None:
    first = train_model(pages.context, "gestures", arch="cnn1d", epochs=1, seed=5)["run"]["id"]
    second = train_model(pages.context, "gestures", arch="cnn1d", epochs=2, seed=6)["run"]["id"]
    runs = [show_run(pages.context, r) for r in (first, second)]
    listed = pages.viewer.get("/training").text
    assert 'action="/training/compare"' in listed and 'data-testid="compare-submit"' in listed
    assert f'name="run" value="{first}" aria-label="compare run {first}"' in listed

    response = pages.viewer.get("/training/compare", params=[("run", first), ("run", second)])
    assert response.status_code == 200
    page = response.text
    assert re.findall(r'data-testid="compare-row" data-run="([^"]+)"', page) == [first, second]
    fields = {
        name.strip(): differs
        for differs, name in re.findall(
            r'data-testid="compare-field" data-differs="(true|false)">([^<◆]+)', page
        )
    }
    assert fields["epochs"] == fields["seed"] == "true" and fields["arch"] == fields["batch size"] == "false"
    assert re.findall(r'data-testid="compare-n">(\d+)<', page) == [
        str(r["split_counts"]["test"]) for r in runs
    ]
    intervals = [html.unescape(i) for i in re.findall(r'data-testid="compare-interval">([^<]+)<', page)]
    assert intervals == [f"{100 * r['metric']['low']:.1f}–{100 * r['metric']['high']:.1f} %" for r in runs]
    assert page.count('data-testid="compare-warning"') == 2, "60 samples leave a small test split"
    too_many = pages.viewer.get("/training/compare", params=[("run", f"run_{i}") for i in range(13)])
    assert too_many.status_code == 422 and "compare at most 12 runs at once; 13 were ticked" in too_many.text

    curves = {f["layout"]["title"]["text"]: f for f in _figures(page, "compare-curve")}
    assert list(curves)[:2] == ["loss per epoch", "val_loss per epoch"] and "accuracy per epoch" in curves
    loss = curves["loss per epoch"]["data"]
    assert [trace["y"] for trace in loss] == [r["history"]["loss"] for r in runs]
    assert [trace["name"] for trace in loss] == [f"{first} (cnn1d)", f"{second} (cnn1d)"]

    assert pages.viewer.get("/training/compare").status_code == 422
    assert pages.viewer.get("/training/compare", params={"run": "run_missing"}).status_code == 404
