"""Splitting through the service and the CLI: the plan is stored, a built cut's head is a native
module for the device and its tail a LiteRT module for the gateway; the head module then the tail
gives the unsplit int8 model's outputs exactly in TFLM and its accuracy in LiteRT."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from tinymlaas.cli.app import app
from tinymlaas.errors import InvalidInput
from tinymlaas.services.context import Context
from tinymlaas.services.splitting import build_split, list_splits, plan_model_split, show_split
from tinymlaas.storage.tables import ModelRow


@pytest.fixture(scope="module")
def plan(digits_cnn_store: tuple[Context, int]) -> dict[str, Any]:
    context, _ = digits_cnn_store
    return plan_model_split(context, "digits-cnn", "nano33ble:ble:rpi4")


def test_a_plan_is_stored_with_every_candidate_and_the_choice(digits_cnn_store, plan) -> None:  # type: ignore[no-untyped-def]
    context, _ = digits_cnn_store
    assert plan["model"]["name"] == "digits-cnn" and plan["chain"] == "nano33ble:ble:rpi4"
    assert plan["chosen"] in {c["index"] for c in plan["candidates"]}
    assert show_split(context, plan["id"])["candidates"] == plan["candidates"]
    listed = list_splits(context, "digits-cnn")  # newest first; other tests of this store plan too
    assert listed[0]["id"] == plan["id"] and all(p["model"]["name"] == "digits-cnn" for p in listed)


def test_a_built_cut_runs_exactly_like_the_unsplit_model(digits_cnn_store, plan) -> None:  # type: ignore[no-untyped-def]
    context, test_samples = digits_cnn_store
    interior = [c["index"] for c in plan["candidates"] if 0 < c["index"] < plan["operators"]]
    built = build_split(context, plan["id"], cut=interior[len(interior) // 2])["build"]
    head, tail = built["head"], built["tail"]
    assert (head["board"], head["runtime"], head["fits"]) == ("nano33ble", "native", True), head["reasons"]
    assert (tail["board"], tail["runtime"], tail["fits"]) == ("rpi4", "litert", True), tail["reasons"]
    accuracy = built["accuracy"]
    assert accuracy["samples"] == test_samples
    # The cut moves no arithmetic: the head module then the tail in TFLM is the unsplit model exactly.
    # The tail's LiteRT kernels may round some outputs a few steps apart from TFLM's; accuracy holds.
    assert accuracy["exact_with_tflm_tail"] is True
    assert abs(accuracy["split"] - accuracy["unsplit"]) <= 0.01, accuracy
    assert show_split(context, plan["id"])["build"]["cut"] == built["cut"]


def test_the_extremes_and_unknown_cuts_are_not_built(digits_cnn_store, plan) -> None:  # type: ignore[no-untyped-def]
    context, _ = digits_cnn_store
    with pytest.raises(InvalidInput, match="whole model"):
        build_split(context, plan["id"], cut=0)
    with pytest.raises(InvalidInput, match="not a valid cut"):
        build_split(context, plan["id"], cut=999)


def test_a_model_without_an_int8_variant_is_refused_with_what_to_do(digits_cnn_store) -> None:  # type: ignore[no-untyped-def]
    context, _ = digits_cnn_store
    with context.session() as session:
        session.add(
            ModelRow(id="mdl_float", name="float-only", version=1, origin="trained", arch="x", params=1)
        )
    with pytest.raises(InvalidInput, match=r"no int8 variant.*squeeze"):
        plan_model_split(context, "float-only", "nano33ble:ble:rpi4")


def test_cli_split_json_lists_the_cuts_with_predictions_and_the_choice(digits_cnn_store) -> None:  # type: ignore[no-untyped-def]
    context, _ = digits_cnn_store
    base = ["--data-dir", str(context.settings.data_dir)]
    result = CliRunner().invoke(app, [*base, "split", "digits-cnn", "--chain", "pico:wifi:rpi4", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert plan["device"] == "pico" and plan["link"] == "wifi"
    for candidate in plan["candidates"]:
        assert {"device", "transfer", "remote", "total_ms", "fits"} <= set(candidate)
    table = CliRunner().invoke(app, [*base, "splits", "show", plan["id"]])
    assert table.exit_code == 0, table.output
    assert "chosen: cut" in table.output and "transfer:" in table.output
    bad = CliRunner().invoke(app, [*base, "split", "digits-cnn", "--chain", "pico:smoke:rpi4"])
    assert isinstance(bad.exception, InvalidInput) and "Unknown link" in str(bad.exception)
