"""The Cost page: defaults shown with their sources, charts that follow the form, measured figures used."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from helpers.seeding import add_model_chain, logged_in_client, register_device
from tinymlaas.server.app import create_app
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import DeviceRepository

LATENCY_MS = 12.5  # what dev-pico reports; the Pico's active power on file is 0.1 W


def _seed(context: Context) -> None:
    """A Pico and an ESP32-S3 that reported a latency, and a module whose input is 50 x 3 int8."""
    now = datetime.now(UTC)
    tensor = {"name": "in", "shape": [1, 50, 3], "dtype": "int8", "scale": 0.1, "zero_point": 0}
    with context.session() as session:
        add_model_chain(
            session, model_id="mdl_w", variant_id="var_w", module_id="mod_w", board="pico", version=2,
            inputs=[tensor],
        )  # fmt: skip
        devices = DeviceRepository(session)
        for endpoint, board in (("dev-pico", "pico"), ("dev-esp", "esp32s3")):
            register_device(devices, endpoint, now)
            devices.set_reported(endpoint, board_id=board, telemetry={"mean_latency_ms": LATENCY_MS})


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Iterator[TestClient]:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("cost") / "data"))
    _seed(context)
    with logged_in_client(context, Role.VIEWER, name="cfo", landing="/cost") as client:
        yield client


def _figure(text: str, chart: str) -> dict:
    found = re.search(rf'data-testid="chart-{chart}" data-figure="([^"]*)"', text)
    assert found, f"no {chart} chart on the page"
    return json.loads(html.unescape(found.group(1)))


def _cell(text: str, testid: str) -> str:
    found = re.search(rf'data-testid="{testid}"[^>]*>(.*?)</(?:td|div|p)>', text, re.S)
    assert found, f"no {testid} on the page"
    return html.unescape(re.sub(r"<[^>]+>", "", found.group(1))).strip()


def _value(text: str, name: str) -> str:
    found = re.search(rf'name="{name}" type="number"[^>]*value="([^"]*)"', text)
    assert found, f"no field {name}"
    return found.group(1)


def test_the_page_needs_a_login(tmp_path) -> None:
    with TestClient(create_app(Context(Settings(data_dir=tmp_path / "data")))) as client:
        response = client.get("/cost", params={"devices": 5}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/cost%3Fdevices%3D5"


def test_the_defaults_are_shown_with_their_units_and_sources(page) -> None:
    response = page.get("/cost")
    assert response.status_code == 200
    text = response.text
    assert _value(text, "devices") == "1000"
    assert _value(text, "electricity_usd_per_kwh") == "0.16"
    assert "U.S. EIA, Electric Power Annual 2023" in _cell(text, "source-electricity_usd_per_kwh")
    assert 'href="https://www.eia.gov/electricity/annual/"' in text
    assert "AWS IoT Core pricing" in _cell(text, "source-cloud_message_usd_per_million")
    assert _cell(text, "source-data_usd_per_gb").startswith("assumption, not a quoted figure")
    assert "Raspberry Pi Pico" in _cell(text, "source-tinyml_device_usd")
    row = re.search(r'data-testid="param-data_usd_per_gb">(.*?)</tr>', text, re.S)
    assert row and "<td>USD per GB</td>" in row.group(1)
    assert "breaks even after 20.3 months" in _cell(text, "break-even")
    assert _cell(text, "break-even-month") == "20.3"
    assert _cell(text, "tinyml-total") == "$4,000"


def test_changing_a_parameter_changes_the_charts(page) -> None:
    before = page.get("/cost").text
    after = page.get("/cost", params={"devices": 37, "tinyml_device_usd": 20, "horizon_months": 12}).text
    cumulative = _figure(after, "cumulative")
    assert cumulative != _figure(before, "cumulative")
    cloud, tinyml = cumulative["data"]
    assert cloud["x"] == list(range(13))
    assert tinyml["y"][0] == pytest.approx(37 * 20)
    fleet = _figure(after, "fleet")
    assert 37 in fleet["data"][0]["x"] and 37 not in _figure(before, "fleet")["data"][0]["x"]
    assert _cell(after, "source-devices") == "entered on this page"
    assert _value(after, "devices") == "37"


def test_a_device_latency_gives_the_energy_and_a_module_the_upload(page) -> None:
    text = page.get("/cost", params={"energy_from": "device:dev-pico", "payload_from": "module:mod_w"}).text
    assert float(_value(text, "energy_per_inference_j")) == pytest.approx(0.1 * LATENCY_MS / 1000)
    energy_source = _cell(text, "source-energy_per_inference_j")
    assert "device dev-pico (pico)" in energy_source and "12.5 ms" in energy_source
    assert _value(text, "payload_bytes") == "150"
    assert "module mod_w (wave v2, int8, pico)" in _cell(text, "source-payload_bytes")


def test_a_figure_that_cannot_be_used_is_an_error_naming_why(page) -> None:
    response = page.get("/cost", params={"energy_from": "device:dev-esp"})
    assert response.status_code == 422
    assert "esp32s3 has no active power figure on file" in _cell(response.text, "cost-error")
    assert 'data-testid="chart-cumulative"' not in response.text


def test_bad_input_is_named_and_what_was_typed_is_kept(page) -> None:
    response = page.get("/cost", params={"devices": "lots", "horizon_months": "6"})
    assert response.status_code == 422
    assert _cell(response.text, "cost-error") == "Fleet size (devices): 'lots' is not a number"
    assert _value(response.text, "horizon_months") == "6"
    refused = page.get("/cost", params={"horizon_months": 0})
    assert "horizon_months must be at least 1" in _cell(refused.text, "cost-error")


def test_choosing_another_board_replaces_the_echoed_price(page) -> None:
    text = page.get("/cost", params={"board": "rpi4", "board_was": "pico", "tinyml_device_usd": "4"}).text
    assert _value(text, "tinyml_device_usd") == "55"
    kept = page.get("/cost", params={"board": "rpi4", "board_was": "rpi4", "tinyml_device_usd": "40"}).text
    assert _value(kept, "tinyml_device_usd") == "40"
    assert _cell(kept, "source-tinyml_device_usd") == "entered on this page"
