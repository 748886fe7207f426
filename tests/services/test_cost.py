"""The cost model: arithmetic checked against hand-worked cases, break-even, fleet sweeps, bad input."""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import fields, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinymlaas.errors import InvalidInput
from tinymlaas.services.cost import (
    BOARD_FIGURES,
    DAYS_PER_MONTH,
    SOURCES,
    CostInputs,
    board_figures,
    estimate,
    fleet_sizes,
    resolve,
)

# A fleet worked by hand: one million inferences per device per month, round prices.
HAND = CostInputs(
    devices=10,
    inferences_per_device_per_day=1e6 / DAYS_PER_MONTH,
    payload_bytes=10_000,  # two 5,120-byte messages per upload
    horizon_months=12,
    cloud_inference_usd_per_million=0.5,
    cloud_message_usd_per_million=1.0,
    message_bytes=5120,
    data_usd_per_gb=2.0,
    cloud_connection_usd_per_device_month=0.5,
    cloud_hardware_usd_per_device=5.0,
    cloud_fixed_usd_per_month=10.0,
    tinyml_device_usd=30.0,
    energy_per_inference_j=10.0,
    radio_j_per_byte=1e-6,
    electricity_usd_per_kwh=0.36,
    tinyml_fixed_usd_per_month=0.0,
)


def test_a_hand_worked_fleet() -> None:
    result = estimate(HAND)
    # Per device per month: 1e6 inferences at $0.5/M; 2e6 messages at $1/M; 1e10 bytes = 10 GB at $2;
    # 1e10 bytes x 1 uJ = 1e4 J = 1/360 kWh at $0.36 = $0.001; connection $0.5.
    assert result.cloud_per_device_month == pytest.approx(
        {"inference": 0.5, "messaging": 2.0, "data": 20.0, "radio_energy": 0.001, "connection": 0.5}
    )
    # 1e6 x 10 J = 1e7 J = 2.777... kWh at $0.36 = $1.
    assert result.tinyml_per_device_month == pytest.approx({"compute_energy": 1.0})
    assert result.cloud_upfront_usd == pytest.approx(50.0)
    assert result.tinyml_upfront_usd == pytest.approx(300.0)
    assert result.cloud_monthly_usd == pytest.approx(10 * 23.001 + 10)
    assert result.tinyml_monthly_usd == pytest.approx(10.0)
    assert result.months == tuple(range(13))
    assert result.cloud_cumulative_usd[3] == pytest.approx(50 + 3 * 240.01)
    assert result.tinyml_cumulative_usd[3] == pytest.approx(300 + 3 * 10)
    assert result.break_even_month == pytest.approx(250 / 230.01)
    assert "breaks even after 1.1 months (in month 2)" in result.verdict


def test_small_uploads_still_cost_one_message_and_bigger_ones_round_up() -> None:
    def messaging(payload: int) -> float:
        return estimate(replace(HAND, payload_bytes=payload)).cloud_per_device_month["messaging"]

    assert messaging(0) == pytest.approx(1.0)
    assert messaging(5120) == pytest.approx(1.0)
    assert messaging(5121) == pytest.approx(2.0)


def test_the_defaults_compute_from_their_documented_parts() -> None:
    defaults = CostInputs()
    # Lambda: $0.20 per 1M requests + 0.125 GB x 0.1 s x $0.0000166667 per GB-second, per 1M.
    assert defaults.cloud_inference_usd_per_million == pytest.approx(0.20 + 0.125 * 0.1 * 0.0000166667 * 1e6)
    # IoT Core connectivity: $0.08 per 1M minutes for 30.4375 days of minutes.
    assert defaults.cloud_connection_usd_per_device_month == pytest.approx(0.08 * 43_830 / 1e6)
    assert defaults.radio_j_per_byte == pytest.approx(0.5 / 37_500)
    assert defaults.tinyml_device_usd == BOARD_FIGURES["pico"].unit_price_usd


def test_the_curves_cross_at_the_break_even_month() -> None:
    result = estimate(replace(HAND, tinyml_device_usd=300.0, horizon_months=24))
    month = result.break_even_month
    assert month is not None and 0 < month < 24
    cloud_at = result.cloud_upfront_usd + result.cloud_monthly_usd * month
    tinyml_at = result.tinyml_upfront_usd + result.tinyml_monthly_usd * month
    assert cloud_at == pytest.approx(tinyml_at)
    for m, cloud, tinyml in zip(
        result.months, result.cloud_cumulative_usd, result.tinyml_cumulative_usd, strict=True
    ):
        assert (tinyml > cloud) if m < month else (tinyml <= cloud)


# Equal hardware, and nothing running on either side.
SAME_COST = {
    "tinyml_device_usd": 5.0,
    "energy_per_inference_j": 0.0,
    "inferences_per_device_per_day": 0.0,
    "cloud_connection_usd_per_device_month": 0.0,
    "cloud_fixed_usd_per_month": 0.0,
}


@pytest.mark.parametrize(
    ("changes", "month", "words"),
    [
        ({"tinyml_device_usd": 5.0}, 0.0, "TinyML costs less from the start"),
        (SAME_COST, 0.0, "Both options cost the same"),
        ({"tinyml_device_usd": 1e6}, (1e7 - 50) / 230.01, "beyond the 12-month horizon"),
        ({"energy_per_inference_j": 1e4}, None, "never breaks even"),
        ({"tinyml_device_usd": 0.0, "energy_per_inference_j": 1e4}, None, "costs less only until month"),
    ],
)  # fmt: skip
def test_every_kind_of_outcome_is_stated_in_words(changes: dict, month: float | None, words: str) -> None:
    result = estimate(replace(HAND, **changes))
    assert result.break_even_month == (month if month is None else pytest.approx(month))
    assert words in result.verdict


def test_fleet_sizes_step_one_two_five_and_include_the_fleet() -> None:
    assert fleet_sizes(1) == (1, 2, 5, 10)
    assert fleet_sizes(300) == (1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1000, 2000)


@settings(max_examples=40, deadline=None)
@given(
    devices=st.integers(1, 100_000),
    per_day=st.floats(0, 100_000),
    payload=st.integers(0, 1_000_000),
    fixed=st.floats(0, 10_000),
    board=st.floats(0, 500),
)
def test_totals_never_fall_as_the_fleet_grows(
    devices: int, per_day: float, payload: int, fixed: float, board: float
) -> None:
    result = estimate(
        CostInputs(
            devices=devices,
            inferences_per_device_per_day=per_day,
            payload_bytes=payload,
            cloud_fixed_usd_per_month=fixed,
            tinyml_device_usd=board,
        )
    )
    assert list(result.fleet_sizes) == sorted(result.fleet_sizes)
    assert devices in result.fleet_sizes
    for totals in (result.cloud_total_by_fleet_usd, result.tinyml_total_by_fleet_usd):
        assert all(a <= b for a, b in itertools.pairwise(totals))
    at_fleet = result.fleet_sizes.index(devices)
    assert result.cloud_total_by_fleet_usd[at_fleet] == pytest.approx(result.cloud_cumulative_usd[-1])
    assert result.tinyml_total_by_fleet_usd[at_fleet] == pytest.approx(result.tinyml_cumulative_usd[-1])


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"devices": 0}, "devices must be at least 1"),
        ({"devices": 2.5}, "devices must be a whole number"),
        ({"horizon_months": 241}, "horizon_months must be at most 240"),
        ({"data_usd_per_gb": -1.0}, "data_usd_per_gb must be at least 0"),
        ({"electricity_usd_per_kwh": math.nan}, "electricity_usd_per_kwh must be a finite number"),
        ({"payload_bytes": "600"}, "payload_bytes must be a number"),
        ({"message_bytes": 0}, "message_bytes must be at least 1"),
    ],
)
def test_invalid_inputs_are_refused_naming_the_parameter(changes: dict, named: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(named)):
        CostInputs(**changes)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(InvalidInput) as caught:
        CostInputs(devices=0, horizon_months=0)
    assert "devices" in caught.value.detail and "horizon_months" in caught.value.detail


def test_every_default_has_a_source_that_is_dated_or_says_it_is_an_assumption() -> None:
    names = {f.name for f in fields(CostInputs)}
    assert set(SOURCES) == names
    for name in names:
        source = SOURCES[name]
        assert source.unit and source.label
        if source.assumption:
            assert source.source.startswith("assumption"), name
        else:
            assert re.search(r"\b20\d\d\b", source.source), f"{name}: a quoted figure needs its date"
    for figures in BOARD_FIGURES.values():
        for value, text in (
            (figures.unit_price_usd, figures.price_source),
            (figures.active_power_w, figures.power_source),
        ):
            assert value is None or re.search(r"\b20\d\d\b", text) or text.startswith("assumption")


def test_resolve_keeps_sources_and_marks_what_a_person_changed() -> None:
    defaults = CostInputs()
    echoed = resolve(
        {
            "devices": 1000,
            "cloud_inference_usd_per_million": float(f"{defaults.cloud_inference_usd_per_million:.8g}"),
        }
    )
    assert echoed.inputs == defaults
    assert echoed.provenance["devices"] == SOURCES["devices"].source
    assert (
        echoed.provenance["cloud_inference_usd_per_million"]
        == SOURCES["cloud_inference_usd_per_million"].source
    )
    changed = resolve({"devices": 12})
    assert changed.inputs.devices == 12
    assert changed.provenance["devices"] == "entered"


def test_a_board_sets_the_device_cost_and_turns_a_latency_into_energy() -> None:
    resolved = resolve({}, board="rpi4", inference_latency_ms=20.0)
    assert resolved.inputs.tinyml_device_usd == 55.0
    assert resolved.inputs.energy_per_inference_j == pytest.approx(6.0 * 0.020)
    assert resolved.provenance["tinyml_device_usd"].startswith("rpi4: ")
    assert "x 20 ms latency" in resolved.provenance["energy_per_inference_j"]
    measured = resolve({}, baselines={"payload_bytes": (150, "module mod_x")})
    assert measured.inputs.payload_bytes == 150
    assert measured.provenance["payload_bytes"] == "module mod_x"


@pytest.mark.parametrize(
    ("given", "kwargs", "named"),
    [
        ({"fleet": 3}, {}, "no cost parameter fleet"),
        ({}, {"board": "esp32s3"}, "board 'esp32s3' has no list price on file; give tinyml_device_usd"),
        (
            {"tinyml_device_usd": 12.0},
            {"board": "esp32s3", "inference_latency_ms": 5.0},
            "no active power figure",
        ),
        ({}, {"inference_latency_ms": 5.0}, "inference_latency_ms needs a board"),
        ({}, {"board": "pico", "inference_latency_ms": -1.0}, "inference_latency_ms must be"),
    ],
)
def test_resolve_refuses_what_it_cannot_use(given: dict, kwargs: dict, named: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(named)):
        resolve(given, **kwargs)


def test_a_board_without_figures_says_so() -> None:
    figures = board_figures("my-own-board")
    assert figures.unit_price_usd is None and "no list price on file" in figures.price_source
    assert figures.active_power_w is None
