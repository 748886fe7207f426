"""``/cost``: every default with its source, estimates with the model's arithmetic, bad input named."""

from __future__ import annotations

from dataclasses import fields

import pytest

from tinymlaas.services.auth import Role
from tinymlaas.services.cost import SOURCES, CostInputs


def test_defaults_list_every_parameter_with_its_unit_and_source(api) -> None:
    response = api.client.get("/cost/defaults", headers=api.auth(Role.VIEWER))
    assert response.status_code == 200, response.text
    body = response.json()
    parameters = {p["name"]: p for p in body["parameters"]}
    assert set(parameters) == {f.name for f in fields(CostInputs)}
    for name, parameter in parameters.items():
        assert parameter["value"] == getattr(CostInputs(), name)
        assert parameter["unit"] == SOURCES[name].unit
        assert parameter["source"] == SOURCES[name].source
    assert parameters["cloud_message_usd_per_million"]["url"] == "https://aws.amazon.com/iot-core/pricing/"
    assert parameters["data_usd_per_gb"]["assumption"] is True
    boards = {b["board"]: b for b in body["boards"]}
    assert boards["pico"]["unit_price_usd"] == 4.0
    assert boards["esp32s3"]["unit_price_usd"] is None
    assert "no list price on file" in boards["esp32s3"]["price_source"]


def test_an_estimate_uses_the_defaults_for_what_is_left_out(api) -> None:
    response = api.client.post(
        "/cost/estimate", json={"devices": 3, "horizon_months": 4}, headers=api.auth(Role.OPERATOR)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["inputs"]["devices"] == 3
    assert body["inputs"]["payload_bytes"] == CostInputs().payload_bytes
    assert body["sources"]["devices"] == "entered"
    assert body["sources"]["electricity_usd_per_kwh"] == SOURCES["electricity_usd_per_kwh"].source
    assert body["months"] == [0, 1, 2, 3, 4]
    assert body["tinyml_upfront_usd"] == pytest.approx(3 * 4.0)
    assert body["tinyml_cumulative_usd"][0] == pytest.approx(12.0)
    per_device = sum(body["cloud_per_device_month"].values())
    assert body["cloud_cumulative_usd"][4] == pytest.approx(4 * 3 * per_device)
    assert 3 in body["fleet_sizes"]
    assert body["verdict"]


def test_a_board_and_a_measured_latency_set_price_and_energy(api) -> None:
    body = api.client.post(
        "/cost/estimate",
        json={"board": "jetson-nano", "inference_latency_ms": 8},
        headers=api.auth(Role.VIEWER),
    ).json()
    assert body["inputs"]["tinyml_device_usd"] == 99.0
    assert body["inputs"]["energy_per_inference_j"] == pytest.approx(10.0 * 0.008)
    assert body["sources"]["tinyml_device_usd"].startswith("jetson-nano: ")
    assert "x 8 ms latency" in body["sources"]["energy_per_inference_j"]


def test_cost_needs_a_token(api, problem) -> None:
    problem(api.client.get("/cost/defaults"), 401)
    problem(api.client.post("/cost/estimate", json={}), 401)
    problem(api.client.post("/cost/estimate", json={}, headers={"Authorization": "Bearer tmls_nobody"}), 401)


def test_bad_parameters_are_named(api, problem) -> None:
    body = problem(
        api.client.post(
            "/cost/estimate",
            json={"devices": 0, "data_usd_per_gb": -2, "fleet": 5},
            headers=api.auth(Role.VIEWER),
        ),
        422,
    )
    assert {e["field"] for e in body["errors"]} == {"devices", "data_usd_per_gb", "fleet"}


def test_a_board_the_model_cannot_use_is_refused_with_why(api, problem) -> None:
    headers = api.auth(Role.VIEWER)
    unpriced = problem(api.client.post("/cost/estimate", json={"board": "esp32s3"}, headers=headers), 422)
    assert "give tinyml_device_usd" in unpriced["detail"]
    unknown = problem(api.client.post("/cost/estimate", json={"board": "abacus"}, headers=headers), 422)
    assert "no board 'abacus'" in unknown["detail"] and "pico" in unknown["detail"]
    powerless = problem(
        api.client.post(
            "/cost/estimate",
            json={"board": "coralmicro", "inference_latency_ms": 3},
            headers=headers,
        ),
        422,
    )
    assert "no active power figure" in powerless["detail"]
