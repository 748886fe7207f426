"""Model search through the service and the CLI, on a local Ray with real trials: a small search stores
its front as models with int8 variants; a trial whose estimate cannot fit is pruned before training;
a trial that fails is recorded and the search goes on; a budget nothing meets names the closest trials."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from tinymlaas.cli.app import app
from tinymlaas.errors import InvalidInput, RuntimeFailure
from tinymlaas.jobs.params import SearchParams, parse_params
from tinymlaas.jobs.states import JobKind
from tinymlaas.services.compiling import compile_module
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.services.search import list_searches, run_search, show_search
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.training.search_space import Budget

SMALL = {"width": 0.25, "depth": 1, "kernel": 3, "stride": 2}
MEDIUM = {"width": 0.5, "depth": 2, "kernel": 3, "stride": 2}
HUGE = {"width": 4.0, "depth": 4, "kernel": 9, "stride": 1}  # ~4 MB of int8 weights
WIDE = {"width": 2.0, "depth": 1, "kernel": 3, "stride": 1}  # its TFLM arena is ~11.6 KiB
ARENA_LIMIT = 8 * 1024  # so WIDE cannot be measured in TFLM while SMALL and MEDIUM (<6 KiB) can


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Context:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("search") / "data", arena_search_max_bytes=ARENA_LIMIT
    )
    context = Context(settings)
    DatasetService(context).generate("gestures", "gestures", samples=120, seed=5)
    return context


@pytest.fixture(scope="module")
def search(store: Context) -> dict[str, Any]:
    seen: list[tuple[int, int, str]] = []
    result = run_search(
        store,
        "gestures",
        ["nano33ble"],
        budget=Budget(max_flash=256 * 1024),
        trials=4,
        workers=2,
        epochs=1,
        configs=[SMALL, MEDIUM, HUGE, WIDE],
        on_trial=lambda done, total, trial: seen.append((done, total, trial.get("state", ""))),
    )
    result["progress"] = seen
    return result


def _trial(search: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    return next(t for t in search["trials"] if t["config"] == config)


def test_every_trial_is_recorded_with_its_figures_and_progress_counts_them(search) -> None:  # type: ignore[no-untyped-def]
    assert search["state"] == "succeeded" and search["arch"] == "cnn1d"
    assert [t["config"] for t in search["trials"]] == [SMALL, MEDIUM, HUGE, WIDE]
    assert search["summary"]["counts"] == {"measured": 2, "pruned": 1, "failed": 1}
    assert sorted(done for done, _, _ in search["progress"]) == [1, 2, 3, 4]
    assert {total for _, total, _ in search["progress"]} == {4}
    for config in (SMALL, MEDIUM):
        trial = _trial(search, config)
        assert trial["state"] == "measured"
        accuracy = trial["accuracy"]
        assert accuracy["name"] == "accuracy" and accuracy["n"] > 0 and 0 <= accuracy["value"] <= 1
        figures = trial["boards"]["nano33ble"]
        assert figures["runtime"] == "native" and figures["latency_basis"].startswith("estimate: ")
        assert figures["ram_bytes"] > 0 and figures["flash_bytes"] > 0 and figures["latency_ms"] > 0
        assert figures["within_budget"] is True
        assert figures["tflm"]["ram_bytes"] > trial["arena_bytes"] > 0
        assert trial["train_s"] > 0


def test_a_trial_whose_estimate_cannot_fit_is_pruned_before_training(search) -> None:  # type: ignore[no-untyped-def]
    huge = _trial(search, HUGE)
    assert huge["state"] == "pruned"
    assert huge["train_s"] == 0.0 and "keras_blob" not in huge and "accuracy" not in huge
    assert huge["estimate"]["nano33ble"]["flash_bytes"] > 256 * 1024
    assert "nano33ble: estimated flash" in huge["reason"] and "over 262,144 B" in huge["reason"]


def test_a_failing_trial_is_recorded_with_its_error_and_the_search_goes_on(search) -> None:  # type: ignore[no-untyped-def]
    wide = _trial(search, WIDE)
    assert wide["state"] == "failed"
    assert "TFLM cannot run this model" in wide["error"]


def test_the_front_is_stored_as_models_with_an_int8_variant_that_compile(store, search) -> None:  # type: ignore[no-untyped-def]
    front = search["fronts"]["nano33ble"]
    measured = {t["trial"] for t in search["trials"] if t["state"] == "measured"}
    assert front["ram"] and set(front["ram"]) <= measured and set(front["latency"]) <= measured
    assert set(front["models"]) == {str(n) for n in front["ram"] + front["latency"]}
    for number, stored in front["models"].items():
        with store.session() as session:
            model = ModelRepository(session).model(f"{stored['name']}:{stored['version']}")
            assert model.origin == "trained" and model.keras_blob and model.arch == "cnn1d"
            assert f"search {search['id']} trial {number}: cnn1d width" in model.source_file
            assert [v.quantization for v in model.variants] == ["int8"]
            assert model.variants[0].id == stored["variant"]
            trial = next(t for t in search["trials"] if str(t["trial"]) == number)
            assert model.variants[0].metrics["tflm"]["value"] == trial["accuracy"]["value"]
    first = next(iter(front["models"].values()))
    module = compile_module(store, first["variant"], "nano33ble", compiler="tflm")
    assert module["board"] == "nano33ble"


def test_a_stored_search_is_shown_and_listed(store, search) -> None:  # type: ignore[no-untyped-def]
    shown = show_search(store, search["id"])
    assert shown["trials"] == search["trials"] and shown["fronts"] == search["fronts"]
    listed = list_searches(store, "gestures")
    assert search["id"] in [s["id"] for s in listed] and "trials" not in listed[0]


def test_a_budget_nothing_meets_names_the_closest_trials_in_a_sentence(store, search) -> None:  # type: ignore[no-untyped-def]
    base = ["--data-dir", str(store.settings.data_dir)]
    args = ["search", "--dataset", "gestures", "--boards", "nano33ble", "--max-flash", "1k", "--trials", "3"]
    result = CliRunner().invoke(app, [*base, *args, "--workers", "1", "--epochs", "1", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.output[result.output.index("{") :])
    assert found["summary"]["counts"]["pruned"] == 3  # the runtime alone needs more than 1 KiB
    assert len(found["summary"]["closest"]) == 3
    assert found["summary"]["sentence"].startswith("No trial met the budget on nano33ble")
    assert found["fronts"]["nano33ble"]["ram"] == [] and found["fronts"]["nano33ble"]["models"] == {}
    table = CliRunner().invoke(app, [*base, "searches", "show", found["id"]])
    assert table.exit_code == 0, table.output
    assert "No trial met the budget" in table.output and "closest: trial" in table.output
    fronts = CliRunner().invoke(app, [*base, "searches", "show", search["id"]])
    assert "Pareto front on nano33ble" in fronts.output and "gestures-search:" in fronts.output


def test_search_parameters_are_bounded_when_a_job_is_submitted() -> None:
    params = parse_params(JobKind.SEARCH, {"dataset": "gestures", "boards": ["nano33ble"], "max_ram": 65536})
    assert isinstance(params, SearchParams) and params.trials == 24
    with pytest.raises(InvalidInput, match="trials"):
        parse_params(JobKind.SEARCH, {"dataset": "gestures", "boards": ["nano33ble"], "trials": 201})
    with pytest.raises(InvalidInput, match="at least one board"):
        parse_params(JobKind.SEARCH, {"dataset": "gestures", "boards": []})


def test_bad_requests_are_refused_before_any_trial(store) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="trials must be from 1 to 200"):
        run_search(store, "gestures", ["nano33ble"], trials=0)
    with pytest.raises(InvalidInput, match="takes no alpha"):
        run_search(store, "gestures", ["nano33ble"], space={"alpha": [1]}, trials=1)
    with pytest.raises(InvalidInput, match="'gate' needs inputs of rank 3"):
        run_search(store, "gestures", ["nano33ble"], arch="gate", trials=1)


def test_a_ray_cluster_nothing_answers_at_is_a_clear_error_at_start(store) -> None:  # type: ignore[no-untyped-def]
    settings = store.settings.model_copy(update={"ray_address": "127.0.0.1:9"})
    context = Context(settings)
    with pytest.raises(RuntimeFailure, match=r"cannot reach the Ray cluster at '127.0.0.1:9'"):
        run_search(context, "gestures", ["nano33ble"], trials=1)
    failed = list_searches(context, "gestures")[0]
    assert failed["state"] == "failed" and "cannot reach the Ray cluster" in failed["error"]
