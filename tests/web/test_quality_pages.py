"""What the dashboard says of a variant that lost accuracy in quantization, and what deploying it needs."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from helpers.pages import texts
from helpers.seeding import add_degraded_chain, logged_in_client
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings


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
