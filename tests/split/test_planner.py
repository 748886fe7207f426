"""The planner on real models: QEMU instruction counts for the device, LiteRT for the gateway."""

from __future__ import annotations

import pytest

from tinymlaas.catalog.loader import load_catalog
from tinymlaas.errors import InvalidInput
from tinymlaas.split.cuts import find_cuts
from tinymlaas.split.planner import parse_chain, plan_split


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalog()


@pytest.fixture(scope="module")
def straight_plan(straight_cnn: bytes, catalog):  # type: ignore[no-untyped-def]
    return plan_split(straight_cnn, parse_chain("nano33ble:ble:rpi4", catalog), catalog)


def test_every_valid_cut_is_costed_from_its_source_and_the_fastest_fitting_one_is_chosen(
    straight_plan,
) -> None:  # type: ignore[no-untyped-def]
    plan = straight_plan
    indices = [c.cut.index for c in plan.candidates]
    assert indices[0] == 0 and indices[-1] == plan.operators
    assert indices == sorted(indices)
    for c in plan.candidates:
        assert c.total_ms == pytest.approx(c.device.ms + c.transfer.ms + c.remote.ms)
        assert c.payload_bytes > c.cut.nbytes  # the tensor travels with its header
        assert "Block1" in c.transfer.basis and "ble" in c.transfer.basis
        if c.cut.index > 0:
            assert "counted in QEMU mps2-an386" in c.device.basis
            assert c.device.low_ms <= c.device.ms <= c.device.high_ms
        if c.cut.index < plan.operators:
            assert "LiteRT on the emulating host" in c.remote.basis and "rpi4" in c.remote.basis
    # More layers on the device never take fewer instructions.
    device = [c.device.ms for c in plan.candidates]
    assert device == sorted(device)
    fitting = [c for c in plan.candidates if c.fits]
    assert plan.chosen == min(fitting, key=lambda c: c.total_ms).cut.index
    data = plan.as_dict()
    assert data["chain"] == "nano33ble:ble:rpi4" and len(data["candidates"]) == len(plan.candidates)


def test_a_transfer_costs_more_the_bigger_the_tensor_crossing(straight_plan) -> None:  # type: ignore[no-untyped-def]
    by_size = sorted(straight_plan.candidates, key=lambda c: c.payload_bytes)
    assert by_size[0].transfer.ms < by_size[-1].transfer.ms


def test_cuts_inside_a_branch_are_not_offered(residual_cnn: bytes, catalog) -> None:  # type: ignore[no-untyped-def]
    plan = plan_split(residual_cnn, parse_chain("pico:wifi:rpi4", catalog), catalog)
    skipped = {index for index, _ in plan.skipped}
    assert skipped, "the residual branch crosses some cuts"
    assert not skipped & {c.cut.index for c in plan.candidates}
    assert any("several tensors cross" in note for note in plan.notes)
    assert "cortex-m0plus" in plan.candidates[1].device.basis


def test_a_microcontroller_without_a_native_build_gets_a_labelled_mac_estimate(
    straight_cnn: bytes, catalog
) -> None:  # type: ignore[no-untyped-def]
    plan = plan_split(straight_cnn, parse_chain("esp32s3:wifi:rpi4", catalog), catalog)
    interior = plan.candidates[1]
    assert interior.device.basis.startswith("rough MAC-based estimate")
    assert interior.device.low_ms < interior.device.ms < interior.device.high_ms


@pytest.mark.parametrize(
    ("chain", "message"),
    [
        ("nano33ble:rpi4", "device:link:node"),
        ("nano33ble:carrier-pigeon:rpi4", "Unknown link"),
        ("nano33ble:ble:rpi4:wifi:x86-64-host", "first two nodes"),
        ("nano33ble::rpi4", "device:link:node"),
    ],
)
def test_a_bad_chain_is_refused_naming_what_is_wrong(catalog, chain: str, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match=message):
        parse_chain(chain, catalog)


def test_an_unknown_board_in_a_chain_is_named(catalog) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Exception, match="toaster"):
        parse_chain("toaster:ble:rpi4", catalog)


def test_energy_is_computed_only_where_a_source_gives_power_figures(
    straight_cnn: bytes, catalog, straight_plan
) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="No source gives power figures for Raspberry Pi Pico"):
        plan_split(straight_cnn, parse_chain("pico:ble:rpi4", catalog), catalog, objective="energy")
    with pytest.raises(InvalidInput, match="Unknown objective"):
        plan_split(straight_cnn, parse_chain("nano33ble:ble:rpi4", catalog), catalog, objective="cost")
    for c in straight_plan.candidates:
        assert c.energy is not None and "nRF52840" in c.energy.basis
        assert c.energy.low_mj <= c.energy.mj <= c.energy.high_mj
    # Sending more bytes costs more radio energy: all offloaded sends the input, all on device the result.
    offload, on_device = straight_plan.extremes
    assert offload.cut.nbytes > on_device.cut.nbytes
    energy = plan_split(straight_cnn, parse_chain("nano33ble:ble:rpi4", catalog), catalog, objective="energy")
    fitting = [c for c in energy.candidates if c.fits]
    assert energy.chosen == min(fitting, key=lambda c: c.energy.mj).cut.index
    assert find_cuts(straight_cnn).operators > 0
