"""A variant worse than its float model is marked degraded everywhere it is read, and deploy refuses it."""

from __future__ import annotations

import pytest

from helpers.seeding import accuracy, add_degraded_chain
from tinymlaas.errors import InvalidInput
from tinymlaas.services.campaigns import create_campaign, preview_campaign
from tinymlaas.services.context import Context
from tinymlaas.services.models import show_model, show_variant
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import ModelRepository


@pytest.fixture
def seeded(context: Context) -> Context:
    """Float 27/27, int8 in TFLM 18/27: the figures of the unscaled tabular CSV."""
    with context.session() as session:
        add_degraded_chain(session)
    return context


def test_the_variant_reads_as_degraded_with_its_figures(seeded):
    variant = show_model(seeded, "mdl_w").variants[0]
    assert variant.degraded and variant.drop == pytest.approx(33.333, abs=1e-3)
    assert variant.degraded_reason == (
        "accuracy in tflm is 66.7 % against the float model's 100.0 %: 33.3 points lost "
        "(more than the 2-point limit) and the 95 % intervals do not overlap, on 27 samples"
    )
    assert show_variant(seeded, "var_w")["degraded"]


@pytest.mark.parametrize("plan", [create_campaign, preview_campaign])
def test_deploy_refuses_a_degraded_module_unless_allowed(seeded, plan):
    with pytest.raises(InvalidInput, match=r"module mod_w is degraded: accuracy in tflm is 66\.7 %"):
        plan(seeded, "mod_w", "board:nano33ble")
    with pytest.raises(InvalidInput) as allowed:
        plan(seeded, "mod_w", "board:nano33ble", allow_degraded=True)
    assert "degraded" not in allowed.value.detail and "No registered device" in allowed.value.detail


def test_the_allowed_drop_is_a_setting(seeded, tmp_path):
    lenient = Context(Settings(data_dir=seeded.settings.data_dir, degraded_threshold_points=40))
    variant = show_model(lenient, "mdl_w").variants[0]
    assert variant.degraded  # 33 points is within 40, but the intervals no longer overlap
    with lenient.session() as session:
        ModelRepository(session).variant("var_w").metrics = {"tflm": accuracy(25, 27)}
    assert not show_model(lenient, "mdl_w").variants[0].degraded
    assert show_model(seeded, "mdl_w").variants[0].degraded
