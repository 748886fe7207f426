"""What the dashboard says of a variant that lost accuracy in quantization, and what deploying it needs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from helpers.pages import texts
from helpers.seeding import accuracy, add_degraded_chain, logged_in_client
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import ModelRepository


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    context = Context(Settings(data_dir=tmp_path / "data"))
    with context.session() as session:
        add_degraded_chain(session)
    with logged_in_client(context, Role.OPERATOR) as logged_in:
        yield logged_in


def test_the_model_page_marks_a_degraded_variant_with_its_figures(client):
    page = client.get("/models/mdl_w").text
    [quality] = texts(page, "variant-quality")
    assert quality.startswith(
        "degraded −33.3 pt: accuracy in tflm is 66.7 % against the float model's 100.0 %"
    )
    assert 'data-degraded="true"' in page and texts(page, "variant-method") == ["· ptq"]
    [cell] = texts(page, "variant-tflm")
    assert cell == "accuracy 66.7 % (95 % CI 47.8–81.4 %, n=27)"


def test_the_wizard_refuses_a_degraded_module_until_allowed(client):
    page = client.get("/deployments?module=mod_w&selector=board:nano33ble").text
    [error] = texts(page, "flash-error")
    assert error.startswith("module mod_w is degraded: accuracy in tflm is 66.7 %")
    assert "· degraded ·" in page
    allowed = client.get("/deployments?module=mod_w&selector=board:nano33ble&allow_degraded=on").text
    [error] = texts(allowed, "flash-error")
    assert "degraded" not in error and "No registered device" in error
    assert 'data-testid="wizard-allow-degraded" checked' not in allowed
    assert 'value="on" checked data-testid="wizard-allow-degraded"' in allowed


def test_the_model_page_says_what_the_drop_was_cross_validated_on(client, tmp_path):
    context = Context(Settings(data_dir=tmp_path / "data"))
    with context.session() as session:
        ModelRepository(session).model("mdl_w").cross_validation = {
            "folds": 5, "samples": 178, "method": "ptq",
            "float": accuracy(140, 178), "int8": {"tflm": accuracy(120, 178)},
        }  # fmt: skip
    page = client.get("/models/mdl_w").text
    assert texts(page, "cross-validation") == [
        "The test split is small, so the int8 drop was cross-validated over 5 folds of all 178 samples: "
        "float accuracy 78.7 % (95 % CI 72.1–84.0 %, n=178), int8 in tflm accuracy 67.4 % "
        "(95 % CI 60.2–73.9 %, n=178)."
    ]
    [quality] = texts(page, "variant-quality")
    assert quality.endswith(
        "11.2 points lost (more than the 2-point limit), on 178 samples (5-fold cross-validation)"
    )
