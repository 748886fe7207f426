"""The rollout wizard: a model, then its variants per board, then devices counted as campaigns count them."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from helpers.pages import texts
from helpers.seeding import (
    add_campaign,
    add_degraded_chain,
    add_module,
    add_variant,
    logged_in_client,
    register_device,
)
from tinymlaas.server.app import create_app
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import DeviceRepository, ModelRepository

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
PACKAGED = {"package_blob": "1" * 64, "manifest": {"runtime": "tflm"}, "flash_bytes": 10, "ram_bytes": 10}


def _seed(context: Context) -> None:
    """Model wave v2 (mdl_1) with three int8 modules of one variant: mod_pico and mod_nano are clean,
    mod_bad failed its self-test on a device; mod_unbuilt was never packaged. The degraded model
    mdl_w (wave v1) with its nano33ble module mod_w. Two picos tagged wave-1 and a nano33ble."""
    with context.session() as session:
        add_variant(session, model_id="mdl_1", variant_id="var_1", version=2)
        ModelRepository(session).variant("var_1").method = "qat"
        add_module(session, module_id="mod_pico", variant_id="var_1", board="pico", **PACKAGED)
        add_module(session, module_id="mod_nano", variant_id="var_1", board="nano33ble", **PACKAGED)
        add_module(session, module_id="mod_bad", variant_id="var_1", board="pico", **PACKAGED)
        add_module(session, module_id="mod_unbuilt", variant_id="var_1", board="pico", fits=False)
        add_degraded_chain(session)
        devices = DeviceRepository(session)
        for endpoint, board, tags in (
            ("pico-1", "pico", ["wave-1"]),
            ("pico-2", "pico", ["wave-1"]),
            ("nano-1", "nano33ble", []),
        ):
            register_device(devices, endpoint, NOW)
            devices.set_reported(endpoint, board_id=board)
            devices.set_tags(endpoint, tags)
        devices.mark_offline("pico-2")
        add_campaign(
            session, campaign_id="cmp_bad", module_id="mod_bad", selector="pico-1", endpoint="pico-1",
            state="halted", installation="failed", at=NOW, update_result=58,
        )  # fmt: skip


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Context:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("wizard") / "data"))
    _seed(context)
    return context


@pytest.fixture(scope="module")
def viewer(context: Context) -> Iterator[TestClient]:
    with logged_in_client(context, Role.VIEWER) as client:
        yield client


def _options(page: str, name: str) -> dict[str, tuple[str, str]]:
    """Each option of the select named ``name``: value -> (its attributes, its label)."""
    select = re.search(rf'<select name="{name}"[^>]*>(.*?)</select>', page, re.S)
    assert select, f"no select named {name}"
    return {
        value: (attributes, html.unescape(label.strip()))
        for value, attributes, label in re.findall(
            r'<option value="([^"]*)"([^>]*)>([^<]*)</option>', select.group(1)
        )
    }


def test_a_model_is_chosen_first_and_its_variants_follow_per_board(viewer: TestClient) -> None:
    page = viewer.get("/deployments").text
    models = _options(page, "model")
    assert set(models) == {"", "mdl_1", "mdl_w"}
    assert models["mdl_1"][1] == "wave v2 · 3 deployable modules · mdl_1"
    assert 'name="module"' not in page and 'data-testid="wizard-no-model"' in page

    page = viewer.get("/deployments", params={"model": "mdl_1", "step": "model"}).text
    assert 'data-testid="flash-error"' not in page and 'data-testid="preview"' not in page
    assert re.findall(r'<optgroup label="board ([^"]+)">', page) == ["nano33ble", "pico"]
    variants = _options(page, "module")
    assert set(variants) == {"mod_nano", "mod_pico", "mod_bad"}  # never the unbuilt one
    labels = [label for _, label in variants.values()]
    assert len(set(labels)) == len(labels)
    assert variants["mod_pico"][1] == "int8·qat · pico (tflm) · mod_pico"
    assert variants["mod_bad"][1] == "int8·qat · pico (tflm) · self-test failed on 1 device · mod_bad"
    selected = [value for value, (attributes, _) in variants.items() if "selected" in attributes]
    assert selected == ["mod_nano"]  # the first board's clean variant, never mod_bad


def test_the_board_the_devices_are_chosen_by_picks_its_variant(viewer: TestClient) -> None:
    page = viewer.get(
        "/deployments", params={"model": "mdl_1", "selector": "board:pico", "step": "model"}
    ).text
    variants = _options(page, "module")
    assert [v for v, (attributes, _) in variants.items() if "selected" in attributes] == ["mod_pico"]
    assert texts(page, "target-count") == ["2 devices: pico-1, pico-2"]


def test_a_degraded_variant_is_labelled_and_offered_only_once_allowed(viewer: TestClient) -> None:
    page = viewer.get("/deployments", params={"model": "mdl_w", "step": "model"}).text
    ((attributes, label),) = _options(page, "module").values()
    assert label == "int8·ptq · nano33ble (tflm) · degraded · mod_w"
    assert "disabled" in attributes and "selected" not in attributes
    assert 'data-testid="wizard-no-default"' in page
    checked = viewer.get("/deployments", params={"model": "mdl_w", "check": "1", "selector": "nano-1"})
    assert checked.status_code == 422
    assert texts(checked.text, "flash-error") == [
        "choose one of the model's variants: each is degraded or failed its self-test, "
        "so none is chosen for you"
    ]
    allowed = viewer.get(
        "/deployments", params={"model": "mdl_w", "allow_degraded": "on", "step": "model"}
    ).text
    ((attributes, _),) = _options(allowed, "module").values()
    assert "disabled" not in attributes


def test_check_with_nothing_chosen_says_what_is_missing(viewer: TestClient) -> None:
    nothing = viewer.get("/deployments", params={"check": "1"})
    assert nothing.status_code == 422
    assert texts(nothing.text, "flash-error") == [
        "choose a model, then one of its variants, before checking a rollout"
    ]
    no_devices = viewer.get("/deployments", params={"check": "1", "model": "mdl_1", "module": "mod_pico"})
    assert no_devices.status_code == 422
    assert texts(no_devices.text, "flash-error") == [
        "choose the devices: a board, a tag, or device names separated by commas"
    ]


def test_changing_the_model_never_checks_a_module_of_another(viewer: TestClient) -> None:
    page = viewer.get(
        "/deployments", params={"model": "mdl_1", "module": "mod_w", "selector": "nano-1", "check": "1"}
    ).text
    assert texts(page, "preview-row") and re.search(r"can run mod_nano \(nano33ble", page)


def test_the_target_picker_lists_boards_tags_and_devices_with_counts(viewer: TestClient) -> None:
    page = viewer.get("/deployments").text
    options = dict(re.findall(r'data-testid="target-option" data-selector="([^"]+)">(.*?)</li>', page))
    assert {selector: re.sub(r"<[^>]+>", "", text) for selector, text in options.items()} == {
        "board:nano33ble": "board:nano33ble every nano33ble · 1 device, 1 online",
        "board:pico": "board:pico every pico · 2 devices, 1 online",
        "tag:wave-1": "tag:wave-1 tagged wave-1 · 2 devices, 1 online",
        "nano-1": "nano-1 nano-1 (nano33ble) · 1 device, 1 online",
        "pico-1": "pico-1 pico-1 (pico) · 1 device, 1 online",
        "pico-2": "pico-2 pico-2 (pico) · 1 device, 0 online",
    }
    assert '<datalist id="wizard-targets">' in page and 'list="wizard-targets"' in page
    assert '<script src="/static/wizard.js"></script>' in page


def test_the_targets_endpoint_counts_as_campaigns_select(viewer: TestClient) -> None:
    def match(selector: str) -> dict[str, object]:
        response = viewer.get("/ui/targets", params={"selector": selector})
        assert response.status_code == 200
        return response.json()

    assert match("tag:wave-1") == {
        "selector": "tag:wave-1",
        "endpoints": ["pico-1", "pico-2"],
        "error": None,
        "count": 2,
    }
    assert match("nano-1, pico-1")["endpoints"] == ["nano-1", "pico-1"]
    assert viewer.get("/ui/targets", params={"selector": "x" * 8193}).status_code == 422
    assert match("board:esp32s3") == {
        "selector": "board:esp32s3",
        "endpoints": [],
        "error": "No registered device matches board 'esp32s3'",
        "count": 0,
    }
    assert match("pico-1,ghost")["error"] == "Unknown endpoint(s) in selector: ghost"


def test_the_targets_endpoint_needs_a_login(context: Context) -> None:
    with TestClient(create_app(context)) as anonymous:
        response = anonymous.get("/ui/targets?selector=board:pico", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
