"""The compatibility gate reports every gap between a module and a device at once."""

from __future__ import annotations

import pytest

from tinymlaas.deploy.gate import DeviceCapabilities, check_compatibility
from tinymlaas.errors import InvalidInput

MANIFEST = {
    "runtime": "tflm",
    "ops": ["CONV_2D", "FULLY_CONNECTED", "MEAN", "SOFTMAX"],
    "arena_bytes": 40_960,
    "files": {
        "model.tflite": {"sha256": "0" * 64, "size": 90_000},
        "model.h": {"sha256": "1" * 64, "size": 10_000},
    },
}


def _caps(**overrides):
    values = {
        "runtime": "tflm",
        "runtime_version": "0.1",
        "ops": frozenset({"CONV_2D", "FULLY_CONNECTED", "MEAN", "SOFTMAX", "RESHAPE"}),
        "arena_bytes_available": 65_536,
        "slot_flash_bytes": 131_072,
        "accelerator": None,
    }
    values.update(overrides)
    return DeviceCapabilities(**values)


def test_a_fitting_device_passes():
    verdict = check_compatibility(MANIFEST, _caps())
    assert verdict.ok
    assert verdict.reasons == ()


def test_exact_fit_passes():
    verdict = check_compatibility(
        MANIFEST, _caps(ops=set(MANIFEST["ops"]), arena_bytes_available=40_960, slot_flash_bytes=100_000)
    )
    assert verdict.ok, verdict.reasons


def test_every_reason_is_listed_with_its_figures():
    caps = _caps(
        runtime="litert",
        runtime_version="1.2.0",
        ops=frozenset({"CONV_2D"}),
        arena_bytes_available=32_768,
        slot_flash_bytes=65_536,
    )
    verdict = check_compatibility(MANIFEST, caps)
    assert not verdict.ok
    runtime, ops, arena, flash = verdict.reasons
    assert "'tflm'" in runtime and "'litert' 1.2.0" in runtime
    assert "3 op(s)" in ops and "FULLY_CONNECTED, MEAN, SOFTMAX" in ops
    assert "40960 bytes" in arena and "32768 bytes" in arena and "short by 8192 bytes" in arena
    assert "100000 bytes" in flash and "65536 bytes" in flash and "over by 34464 bytes" in flash


def test_a_runtime_that_sizes_its_own_arena_skips_the_arena_check():
    manifest = {**MANIFEST, "runtime": "litert", "arena_bytes": None}
    verdict = check_compatibility(manifest, _caps(runtime="litert", arena_bytes_available=0))
    assert verdict.ok, verdict.reasons


def test_capabilities_freeze_the_op_set():
    assert _caps(ops=["ADD", "ADD"]).ops == frozenset({"ADD"})


@pytest.mark.parametrize("key", ["runtime", "ops", "files"])
def test_a_manifest_without_a_required_key_is_invalid(key):
    manifest = {k: v for k, v in MANIFEST.items() if k != key}
    with pytest.raises(InvalidInput, match=key):
        check_compatibility(manifest, _caps())
