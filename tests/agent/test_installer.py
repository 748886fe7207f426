from __future__ import annotations

import copy

import numpy as np
import pytest

from tinymlaas.agent import Installer, SlotStore, UpdateResult, UpdateState, load_model, self_test
from tinymlaas.agent.runtime import NativeRunner, PacedRunner, latency_basis, tflm_arena_bytes
from tinymlaas.catalog import load_catalog
from tinymlaas.compilers.tflm import tensor_arena_size
from tinymlaas.data.scaling import ScalingMethod, fit_scaling
from tinymlaas.errors import Conflict, InvalidInput
from tinymlaas.squeeze.info import TensorInfo
from tinymlaas.squeeze.runtimes import LiteRtRunner, TflmRunner

from .conftest import LINUX_BOARD, MCU_BOARD


def _installer(state_dir, runtime: str, **limits) -> Installer:
    board = load_catalog().board(MCU_BOARD if runtime in ("tflm", "native") else LINUX_BOARD)
    budget = {"arena_limit_bytes": board.usable_ram_bytes, "slot_flash_bytes": board.usable_flash_bytes // 2}
    return Installer(state_dir, **{**budget, **limits})


def _install(installer: Installer, package):
    return installer.install_verified(package.manifest, package.files)


def _version(installer_or_store) -> int:
    store = installer_or_store.slots if isinstance(installer_or_store, Installer) else installer_or_store
    return store.active().manifest["model"]["version"]


def _with_bad_selftest(package):
    manifest = copy.deepcopy(package.manifest)
    manifest["selftest"]["expected"] = [
        [value + 100 for value in row] for row in manifest["selftest"]["expected"]
    ]
    return manifest


@pytest.mark.parametrize(
    ("runtime", "runner_type"), [("tflm", TflmRunner), ("litert", LiteRtRunner), ("native", PacedRunner)]
)
def test_a_package_installs_passes_its_self_test_and_is_confirmed(tmp_path, packages, runtime, runner_type):
    installer = _installer(tmp_path, runtime)
    outcome = _install(installer, packages[(runtime, 1)])
    assert outcome.installed, outcome.detail
    assert (outcome.result, outcome.slot) == (UpdateResult.INSTALLED, "a")
    assert outcome.selftest.passed and outcome.selftest.vectors == 4
    assert outcome.selftest.max_abs_diff <= outcome.selftest.tolerance
    assert (installer.tracker.state, installer.tracker.result) == (
        UpdateState.INSTALLED,
        UpdateResult.INSTALLED,
    )
    active = installer.slots.active()
    assert active.confirmed and active.manifest["runtime"] == runtime
    runner = load_model(active, arena_limit_bytes=None)
    assert isinstance(runner, runner_type)
    assert runner.run(np.zeros((32, 3), np.float32)).shape == (4,)

    update = _install(installer, packages[(runtime, 2)])
    assert (update.installed, update.slot, _version(installer)) == (True, "b", 2)


def test_the_emulated_mcu_reserves_the_bundles_arena(tmp_path, packages):
    installer = _installer(tmp_path, "tflm")
    _install(installer, packages[("tflm", 1)])
    active = installer.slots.active()
    assert tflm_arena_bytes(active) == tensor_arena_size(active.manifest["arena_bytes"])
    assert (active.path / "model.tflite").read_bytes() == packages[("tflm", 1)].files["model.tflite"]


@pytest.mark.parametrize("runtime", ["tflm", "litert"])
def test_a_failed_self_test_reverts_and_the_old_model_keeps_running(tmp_path, packages, runtime):
    installer = _installer(tmp_path, runtime)
    _install(installer, packages[(runtime, 1)])
    broken = _with_bad_selftest(packages[(runtime, 2)])
    outcome = installer.install_verified(broken, packages[(runtime, 2)].files)
    assert not outcome.installed
    assert outcome.result is UpdateResult.INSTALLATION_FAILURE
    assert "Self-test vector 0" in outcome.detail and not outcome.selftest.passed
    assert outcome.slot == "a"
    assert (installer.tracker.state, installer.tracker.result) == (
        UpdateState.DELIVERED,
        UpdateResult.INSTALLATION_FAILURE,
    )
    for store in (installer.slots, SlotStore(tmp_path)):
        assert store.active().confirmed and _version(store) == 1
    old = installer.slots.active()
    assert self_test(load_model(old, arena_limit_bytes=None), old.manifest).passed


def test_an_arena_beyond_the_boards_ram_is_refused(tmp_path, packages):
    package = packages[("tflm", 1)]
    arena = tensor_arena_size(package.manifest["arena_bytes"])
    outcome = _install(_installer(tmp_path, "tflm", arena_limit_bytes=arena - 1), package)
    assert outcome.result is UpdateResult.INSTALLATION_FAILURE
    assert f"{arena}-byte tensor arena" in outcome.detail
    assert outcome.slot is None
    assert SlotStore(tmp_path).active() is None
    assert _install(_installer(tmp_path, "tflm", arena_limit_bytes=arena), package).installed


def test_a_package_larger_than_a_slot_is_refused_before_writing(tmp_path, packages):
    package = packages[("litert", 1)]
    installer = _installer(tmp_path, "litert", slot_flash_bytes=100)
    outcome = _install(installer, package)
    assert outcome.result is UpdateResult.NOT_ENOUGH_STORAGE
    assert installer.tracker.state is UpdateState.INITIAL
    assert not (tmp_path / "slots" / "a").exists()


def test_files_that_do_not_match_their_manifest_fail_the_integrity_check(tmp_path, packages):
    package = packages[("litert", 1)]
    installer = _installer(tmp_path, "litert")
    model = package.files["model.tflite"]
    files = {**package.files, "model.tflite": model[:-1] + bytes([model[-1] ^ 0xFF])}
    outcome = installer.install_verified(package.manifest, files)
    assert outcome.result is UpdateResult.INTEGRITY_CHECK_FAILURE
    assert installer.tracker.state is UpdateState.INITIAL
    assert installer.slots.active() is None


def test_a_module_for_an_unknown_runtime_is_not_loaded(tmp_path, packages):
    package = packages[("litert", 1)].with_manifest(runtime="onnx")
    outcome = _install(_installer(tmp_path, "litert"), package)
    assert outcome.result is UpdateResult.INSTALLATION_FAILURE
    assert "not 'onnx'" in outcome.detail


def test_a_manifest_without_self_test_vectors_is_not_confirmed(tmp_path, packages):
    outcome = _install(_installer(tmp_path, "litert"), packages[("litert", 1)].with_manifest(selftest=None))
    assert not outcome.installed
    assert "no usable self-test vectors" in outcome.detail


def test_a_restart_keeps_the_confirmed_model_and_the_update_state(tmp_path, packages):
    _install(_installer(tmp_path, "tflm"), packages[("tflm", 1)])
    _install(_installer(tmp_path, "tflm"), packages[("tflm", 2)])
    again = _installer(tmp_path, "tflm")
    assert again.slots.active().slot == "b" and _version(again) == 2
    assert again.tracker.state is UpdateState.INSTALLED


def test_load_model_refuses_a_tflm_module_without_its_config(tmp_path, packages):
    installer = _installer(tmp_path, "tflm")
    _install(installer, packages[("tflm", 1)])
    active = installer.slots.active()
    (active.path / "model_config.h").unlink()
    with pytest.raises(InvalidInput, match=r"model_config\.h"):
        load_model(active, arena_limit_bytes=None)


def test_uninstall_goes_back_to_the_previous_model_once_it_passes_again(tmp_path, packages):
    installer = _installer(tmp_path, "tflm")
    with pytest.raises(Conflict, match="needs an installed package"):
        installer.uninstall()
    assert _install(installer, packages[("tflm", 1)]).installed
    with pytest.raises(Conflict, match="no previous model"):
        installer.uninstall()
    assert _install(installer, packages[("tflm", 2)]).installed

    outcome = installer.uninstall()
    assert outcome.installed and outcome.selftest.passed
    assert (outcome.slot, _version(installer)) == ("a", 1)
    assert "v2" in outcome.detail and "v1" in outcome.detail
    assert (installer.tracker.state, installer.tracker.result) == (
        UpdateState.INSTALLED,
        UpdateResult.INSTALLED,
    )
    # The switch is durable: a restart runs version 1, and there is nothing older left to go back to.
    again = _installer(tmp_path, "tflm")
    assert _version(again) == 1
    with pytest.raises(Conflict, match="no previous model"):
        again.uninstall()


def test_uninstall_keeps_the_running_model_when_the_previous_one_no_longer_fits(tmp_path, packages):
    installer = _installer(tmp_path, "tflm")
    assert _install(installer, packages[("tflm", 1)]).installed
    assert _install(installer, packages[("tflm", 2)]).installed
    # The same slots on a board with too little RAM for any arena: the fallback cannot load.
    small = _installer(tmp_path, "tflm", arena_limit_bytes=64)
    outcome = small.uninstall()
    assert not outcome.installed
    assert "previous model fails its self-test" in outcome.detail
    assert _version(small) == 2
    assert small.tracker.state is UpdateState.INSTALLED


@pytest.mark.parametrize("runtime", ["tflm", "litert"])
def test_windows_in_sensor_units_reach_the_model_through_the_manifests_scaling(tmp_path, packages, runtime):
    rng = np.random.default_rng(2)
    raw = np.stack([rng.normal(9.8, 0.2, 32), rng.normal(0, 0.02, 32), rng.normal(600, 200, 32)], axis=-1)
    scaling = fit_scaling(ScalingMethod.STANDARDIZE, raw[np.newaxis].astype(np.float32))
    package = packages[(runtime, 1)].with_manifest(input_scaling=scaling.as_dict())
    installer = _installer(tmp_path, runtime)
    assert _install(installer, package).installed
    scaled_runner = load_model(installer.slots.active(), arena_limit_bytes=None)
    plain = load_model(
        _installed(tmp_path / "plain", runtime, packages[(runtime, 1)]), arena_limit_bytes=None
    )
    window = raw.astype(np.float32)
    assert np.array_equal(scaled_runner.run(window), plain.run(scaling.apply(window)))


@pytest.mark.parametrize(
    ("scaling", "message"),
    [
        (
            {"method": "standardize", "offset": [0.0], "scale": [1.0]},
            "scales 1 input channels; input 0 has 3",
        ),
        ({"method": "standardize", "offset": [0, 0, 0], "scale": [1, -1, 1]}, "scale must be positive"),
        ("standardize", "not an object"),
    ],
)
def test_a_malformed_input_scaling_is_not_loaded(tmp_path, packages, scaling, message):
    outcome = _install(
        _installer(tmp_path, "tflm"), packages[("tflm", 1)].with_manifest(input_scaling=scaling)
    )
    assert outcome.result is UpdateResult.INSTALLATION_FAILURE
    assert message in outcome.detail


def _installed(state_dir, runtime: str, package):
    installer = _installer(state_dir, runtime)
    assert _install(installer, package).installed
    return installer.slots.active()


def test_a_native_module_runs_its_own_c_code_at_the_boards_estimated_pace(tmp_path, packages):
    installer = _installer(tmp_path, "native")
    package = packages[("native", 1)]
    outcome = _install(installer, package)
    assert outcome.installed and outcome.selftest.vectors == 4, outcome.detail
    assert outcome.selftest.max_abs_diff == 0  # bit-exact with the TFLM vectors it carries
    runner = load_model(installer.slots.active(), arena_limit_bytes=None)
    assert isinstance(runner, PacedRunner) and isinstance(runner.inner, NativeRunner)
    target = package.manifest["target"]
    assert runner.latency_s == pytest.approx(target["latency_ms"] / 1000)
    assert latency_basis(runner) == target["latency_basis"] and "QEMU" in latency_basis(runner)
    window = np.random.default_rng(1).normal(size=(32, 3)).astype(np.float32)
    tflm = load_model_as_tflm(packages, window)
    assert np.array_equal(runner.inner.run(window), tflm)


def load_model_as_tflm(packages, window) -> np.ndarray:
    """The same window through the tflm package of the same model version, in the TFLM interpreter."""
    manifest, files = packages[("tflm", 1)].manifest, packages[("tflm", 1)].files
    runner = TflmRunner(
        files["model.tflite"],
        _tensor(manifest["inputs"][0]),
        _tensor(manifest["outputs"][0]),
        arena_bytes=64 * 1024,
    )
    return runner.run(window)


def _tensor(described) -> TensorInfo:
    return TensorInfo(
        described["name"],
        tuple(described["shape"]),
        described["dtype"],
        described["scale"],
        described["zero_point"],
    )


def test_a_native_module_needing_more_ram_than_the_board_leaves_is_refused(tmp_path, packages):
    ram = packages[("native", 1)].manifest["ram_bytes"]
    outcome = _install(_installer(tmp_path, "native", arena_limit_bytes=ram - 1), packages[("native", 1)])
    assert not outcome.installed and f"needs {ram} bytes of RAM" in outcome.detail
