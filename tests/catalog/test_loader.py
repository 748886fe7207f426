"""The board catalog: built-in figures, user overrides, and the loader's refusal of bad files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tinymlaas.catalog import BoardClass, Catalog, load_catalog
from tinymlaas.errors import InvalidInput, NotFound

BUILTIN_IDS = [
    "coralmicro",
    "esp32s3",
    "jetson-nano",
    "nano33ble",
    "nucleo-l4r5zi",
    "pico",
    "rpi4",
    "x86-64-host",
]
FIGURES = ("clock_mhz", "flash_bytes", "ram_bytes", "usable_flash_bytes", "usable_ram_bytes")
KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def valid_board(board_id: str = "my-board") -> dict[str, Any]:
    """A board that loads cleanly; each validation test breaks exactly one thing in it."""
    return {
        "id": board_id,
        "name": "My Board",
        "class": "mcu",
        "soc": "nRF52840",
        "core": "cortex-m4f",
        "clock_mhz": 64,
        "flash_bytes": 1_048_576,
        "ram_bytes": 262_144,
        "usable_flash_bytes": 700_000,
        "usable_ram_bytes": 200_000,
        "runtimes": ["tflm"],
        "transports": ["ble"],
        "sensors": [],
        "sources": {key: f"test datasheet: {key}" for key in FIGURES},
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(value)


def to_toml(data: dict[str, Any]) -> str:
    """Enough TOML for a board file: top-level values, then one-level tables."""
    lines = [f"{key} = {_toml_value(value)}" for key, value in data.items() if not isinstance(value, dict)]
    for key, table in data.items():
        if isinstance(table, dict):
            lines.append(f"[{key}]")
            lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def write_board(directory: Path, data: dict[str, Any], file_name: str | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / (file_name or f"{data['id']}.toml")
    path.write_text(to_toml(data), encoding="utf-8")
    return path


# --- built-in catalog --------------------------------------------------------------------------


def test_builtin_boards_load_sorted_by_id(catalog: Catalog) -> None:
    assert list(catalog.boards) == BUILTIN_IDS
    assert all(catalog.board(board_id).id == board_id for board_id in BUILTIN_IDS)


@pytest.mark.parametrize(
    ("board_id", "field", "expected"),
    [
        ("nano33ble", "clock_mhz", 64),
        ("nano33ble", "flash_bytes", 1 * MIB),
        ("nano33ble", "ram_bytes", 256 * KIB),
        ("pico", "clock_mhz", 133),
        ("pico", "flash_bytes", 2 * MIB),
        ("pico", "ram_bytes", 264 * KIB),
        ("pico", "core", "cortex-m0plus"),
        ("esp32s3", "clock_mhz", 240),
        ("esp32s3", "flash_bytes", 8 * MIB),
        ("esp32s3", "ram_bytes", 512 * KIB),
        ("esp32s3", "accelerator", "vector extensions (ESP-NN)"),
        ("coralmicro", "flash_bytes", 128 * MIB),
        ("coralmicro", "ram_bytes", 64 * MIB),
        ("coralmicro", "core", "cortex-m7"),
        ("coralmicro", "accelerator", "Edge TPU"),
        ("nucleo-l4r5zi", "clock_mhz", 120),
        ("nucleo-l4r5zi", "flash_bytes", 2 * MIB),
        ("nucleo-l4r5zi", "ram_bytes", 640 * KIB),
        ("rpi4", "ram_bytes", 4 * GIB),
        ("rpi4", "core", "cortex-a72"),
        ("jetson-nano", "clock_mhz", 1430),
        ("jetson-nano", "ram_bytes", 4 * GIB),
        ("jetson-nano", "accelerator", "128-core Maxwell GPU"),
        ("x86-64-host", "ram_bytes", 8 * GIB),
    ],
)
def test_builtin_key_figures(catalog: Catalog, board_id: str, field: str, expected: object) -> None:
    assert getattr(catalog.board(board_id), field) == expected


def test_nano33ble_lists_its_sensors(catalog: Catalog) -> None:
    sensors = catalog.board("nano33ble").sensors
    assert "imu:LSM9DS1" in sensors
    assert "microphone:MP34DT05" in sensors


@pytest.mark.parametrize("board_id", BUILTIN_IDS)
def test_builtin_runtimes_follow_the_board_class(catalog: Catalog, board_id: str) -> None:
    board = catalog.board(board_id)
    if board.board_class is BoardClass.MCU:
        # The native compiler builds and measures for Arm Cortex-M cores only.
        cortex_m = board.core.startswith("cortex-m")
        assert board.runtimes == (("tflm", "native") if cortex_m else ("tflm",))
    else:
        assert board.board_class is BoardClass.LINUX
        assert board.runtimes == ("litert", "tflm")


@pytest.mark.parametrize("board_id", BUILTIN_IDS)
def test_every_builtin_figure_has_a_source(catalog: Catalog, board_id: str) -> None:
    sources = catalog.board(board_id).sources
    for figure in FIGURES:
        assert sources[figure].strip(), figure
    # What is left after firmware or OS is never on a datasheet: it must say it is an estimate.
    for figure in ("usable_flash_bytes", "usable_ram_bytes"):
        assert "estimate" in sources[figure], figure


@pytest.mark.parametrize("board_id", BUILTIN_IDS)
def test_builtin_usable_figures_fit_the_totals(catalog: Catalog, board_id: str) -> None:
    board = catalog.board(board_id)
    assert 0 < board.usable_flash_bytes <= board.flash_bytes
    assert 0 < board.usable_ram_bytes <= board.ram_bytes


def test_x86_host_says_its_figures_are_nominal(catalog: Catalog) -> None:
    sources = catalog.board("x86-64-host").sources
    assert all("nominal" in sources[figure] for figure in FIGURES)


def test_catalog_mappings_are_read_only(catalog: Catalog) -> None:
    with pytest.raises(TypeError):
        catalog.boards["pico"] = catalog.board("nano33ble")  # type: ignore[index]


# --- runtimes -----------------------------------------------------------------------------------


def test_tflm_ops_are_the_micro_op_resolver_builtins(catalog: Catalog) -> None:
    tflm = catalog.runtime("tflm")
    assert tflm.supported_ops is not None
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "SOFTMAX", "RESHAPE"} <= tflm.supported_ops
    assert {"QUANTIZE", "DEQUANTIZE", "MEAN", "UNIDIRECTIONAL_SEQUENCE_LSTM"} <= tflm.supported_ops
    # TFLM implements the sequence LSTM only, and has no TOPK_V2 kernel.
    assert tflm.unsupported(("CONV_2D", "LSTM", "TOPK_V2")) == ("LSTM", "TOPK_V2")


def test_tflm_ops_are_spelled_as_tflite_builtins(catalog: Catalog) -> None:
    tflite = pytest.importorskip("tflite")
    builtin_names = {name for name in vars(tflite.BuiltinOperator) if not name.startswith("_")}
    ops = catalog.runtime("tflm").supported_ops
    assert ops is not None
    assert ops <= builtin_names


def test_litert_supports_every_builtin(catalog: Catalog) -> None:
    litert = catalog.runtime("litert")
    assert litert.supported_ops is None
    assert litert.unsupported(("LSTM", "TOPK_V2")) == ()


def test_footprint_falls_back_to_default(catalog: Catalog) -> None:
    tflm = catalog.runtime("tflm")
    assert tflm.footprint_for("cortex-m4f") is tflm.footprints["cortex-m4f"]
    assert tflm.footprint_for("cortex-m4f") != tflm.footprints["default"]
    assert tflm.footprint_for("riscv32") is tflm.footprints["default"]
    litert = catalog.runtime("litert")
    assert litert.footprint_for("cortex-a72") is litert.footprints["default"]


@pytest.mark.parametrize("board_id", BUILTIN_IDS)
def test_every_builtin_board_has_footprints_for_its_runtimes(catalog: Catalog, board_id: str) -> None:
    board = catalog.board(board_id)
    for runtime_id in board.runtimes:
        footprint = catalog.runtime(runtime_id).footprint_for(board.core)
        assert footprint.flash_bytes > 0
        assert footprint.source.strip()


def test_mcu_cores_have_their_own_tflm_footprint(catalog: Catalog) -> None:
    footprints = catalog.runtime("tflm").footprints
    assert {"cortex-m0plus", "cortex-m4f", "cortex-m7", "xtensa-lx7", "default"} <= set(footprints)


# --- look-ups -----------------------------------------------------------------------------------


def test_unknown_board_is_not_found_and_lists_known_ids(catalog: Catalog) -> None:
    with pytest.raises(NotFound) as caught:
        catalog.board("arduino-uno")
    assert "arduino-uno" in str(caught.value)
    assert "nano33ble" in str(caught.value)
    assert caught.value.http_status == 404


def test_unknown_runtime_is_not_found(catalog: Catalog) -> None:
    with pytest.raises(NotFound) as caught:
        catalog.runtime("onnxruntime")
    assert "onnxruntime" in str(caught.value)
    assert "tflm" in str(caught.value)


# --- user directories ---------------------------------------------------------------------------


def test_user_dir_adds_a_board(tmp_path: Path) -> None:
    write_board(tmp_path, valid_board("aaa-board"))
    catalog = load_catalog([tmp_path])
    assert catalog.board("aaa-board").usable_ram_bytes == 200_000
    assert catalog.board("aaa-board").sources["clock_mhz"] == "test datasheet: clock_mhz"
    assert list(catalog.boards) == ["aaa-board", *BUILTIN_IDS]


def test_user_dir_overrides_a_builtin_board(tmp_path: Path) -> None:
    pico = valid_board("pico") | {"flash_bytes": 16 * MIB, "usable_flash_bytes": 15 * MIB}
    write_board(tmp_path, pico)
    catalog = load_catalog([tmp_path])
    assert catalog.board("pico").flash_bytes == 16 * MIB
    assert list(catalog.boards) == BUILTIN_IDS
    assert load_catalog().board("pico").flash_bytes == 2 * MIB  # the package data is untouched


def test_later_user_dir_wins(tmp_path: Path) -> None:
    write_board(tmp_path / "site", valid_board() | {"clock_mhz": 64})
    write_board(tmp_path / "local", valid_board() | {"clock_mhz": 128})
    assert load_catalog([tmp_path / "site", tmp_path / "local"]).board("my-board").clock_mhz == 128


def test_user_dir_ignores_files_that_are_not_toml(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("not a board", encoding="utf-8")
    assert list(load_catalog([tmp_path]).boards) == BUILTIN_IDS


def test_missing_user_dir_is_invalid_input(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-dir"
    with pytest.raises(InvalidInput, match="no-such-dir"):
        load_catalog([missing])


# --- validation ---------------------------------------------------------------------------------


def _without(key: str) -> dict[str, Any]:
    board = valid_board()
    del board[key]
    return board


def _with_sources(**changes: str) -> dict[str, Any]:
    board = valid_board()
    board["sources"] = board["sources"] | changes
    return board


def _without_source(figure: str) -> dict[str, Any]:
    board = valid_board()
    del board["sources"][figure]
    return board


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(_without("soc"), "missing field 'soc'", id="missing-field"),
        pytest.param(_without("sources"), "missing field 'sources'", id="missing-sources"),
        pytest.param(valid_board() | {"clock_mhz": "64"}, "'clock_mhz' must be an integer", id="str-figure"),
        pytest.param(valid_board() | {"flash_bytes": True}, "'flash_bytes' must be an integer", id="bool"),
        pytest.param(valid_board() | {"name": 7}, "'name' must be a string", id="int-name"),
        pytest.param(valid_board() | {"runtimes": "tflm"}, "'runtimes' must be a list", id="str-list"),
        pytest.param(valid_board() | {"sensors": [1]}, "list of strings", id="int-in-list"),
        pytest.param(valid_board() | {"class": "fpga"}, "unknown class 'fpga'", id="unknown-class"),
        pytest.param(
            valid_board() | {"usable_flash_bytes": 2_000_000},
            "usable_flash_bytes (2000000) is larger than flash_bytes",
            id="usable-flash-too-big",
        ),
        pytest.param(
            valid_board() | {"usable_ram_bytes": 300_000},
            "usable_ram_bytes (300000) is larger than ram_bytes",
            id="usable-ram-too-big",
        ),
        pytest.param(valid_board() | {"clock_mhz": 0}, "clock_mhz must be positive", id="zero"),
        pytest.param(valid_board() | {"ram_bytes": -1}, "ram_bytes must be positive", id="negative"),
        pytest.param(_without_source("usable_ram_bytes"), "no source for usable_ram_bytes", id="no-source"),
        pytest.param(_with_sources(flash_bytes="  "), "no source for flash_bytes", id="blank-source"),
        pytest.param(_with_sources(flash_bytes=1), "'sources.flash_bytes' must be a string", id="int-source"),
        pytest.param(_with_sources(flash=""), "unknown field(s) flash", id="unknown-source-key"),
        pytest.param(valid_board() | {"runtimes": ["onnx"]}, "unknown runtime(s) onnx", id="unknown-runtime"),
        pytest.param(valid_board() | {"runtimes": []}, "runtimes is empty", id="no-runtime"),
        pytest.param(
            valid_board() | {"transports": ["zigbee"]}, "unknown transport(s) zigbee", id="transport"
        ),
        pytest.param(valid_board() | {"acclerator": "npu"}, "unknown field(s) acclerator", id="unknown-key"),
    ],
)
def test_invalid_board_file_names_the_file(tmp_path: Path, data: dict[str, Any], message: str) -> None:
    path = write_board(tmp_path, data, "my-board.toml")
    with pytest.raises(InvalidInput) as caught:
        load_catalog([tmp_path])
    assert str(path) in str(caught.value)
    assert message in str(caught.value)
    assert caught.value.http_status == 422


@pytest.mark.parametrize("bad_id", ["My-Board", "-board", "board_1", "board.v2", ""])
def test_id_must_be_a_slug(tmp_path: Path, bad_id: str) -> None:
    path = write_board(tmp_path, valid_board(bad_id), "board.toml")
    with pytest.raises(InvalidInput) as caught:
        load_catalog([tmp_path])
    assert str(path) in str(caught.value)
    assert "not a valid slug" in str(caught.value)


def test_id_must_match_the_file_name(tmp_path: Path) -> None:
    path = write_board(tmp_path, valid_board("my-board"), "other-board.toml")
    with pytest.raises(InvalidInput, match="does not match the file name") as caught:
        load_catalog([tmp_path])
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"id = \n", id="syntax-error"),
        pytest.param(b'id = "a"\nid = "b"\n', id="duplicate-key"),
        pytest.param(b'name = "\xff\xfe"\n', id="not-utf8"),
    ],
)
def test_unparsable_board_file_names_the_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "broken.toml"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match="cannot read it as TOML") as caught:
        load_catalog([tmp_path])
    assert str(path) in str(caught.value)


def test_unreadable_board_file_names_the_file(tmp_path: Path) -> None:
    # A directory named like a board file cannot be opened as one.
    (tmp_path / "dir.toml").mkdir()
    with pytest.raises(InvalidInput, match="cannot read it as TOML") as caught:
        load_catalog([tmp_path])
    assert "dir.toml" in str(caught.value)


# --- power figures --------------------------------------------------------------------------------


def test_power_figures_load_with_their_source(tmp_path: Path) -> None:
    data = valid_board()
    data["power"] = {"cpu_active_mw": 10, "radio_tx_mw": 14, "radio_rx_mw": 13}
    data["sources"]["power"] = "test datasheet: currents at 3 V"
    write_board(tmp_path, data)
    board = load_catalog([tmp_path]).board("my-board")
    assert board.power_mw == {"cpu_active_mw": 10.0, "radio_tx_mw": 14.0, "radio_rx_mw": 13.0}
    assert board.as_dict()["power_mw"]["radio_tx_mw"] == 14.0


@pytest.mark.parametrize(
    ("power", "source", "message"),
    [
        ({"cpu_active_mw": 10, "radio_tx_mw": 14, "radio_rx_mw": 13}, None, "no source for the \\[power\\]"),
        ({"cpu_active_mw": 10, "radio_tx_mw": 14}, "ok", "missing radio_rx_mw"),
        ({"cpu_active_mw": 0, "radio_tx_mw": 14, "radio_rx_mw": 13}, "ok", "positive number"),
        ({"cpu_active_mw": 10, "radio_tx_mw": 14, "radio_rx_mw": 13, "gpu_mw": 1}, "ok", "gpu_mw"),
    ],
)
def test_bad_power_figures_are_refused_naming_the_problem(
    tmp_path: Path, power: dict[str, int], source: str | None, message: str
) -> None:
    data = valid_board()
    data["power"] = power
    if source is not None:
        data["sources"]["power"] = source
    write_board(tmp_path, data)
    with pytest.raises(InvalidInput, match=message):
        load_catalog([tmp_path])


def test_boards_without_a_source_for_power_have_none(catalog: Catalog) -> None:
    assert catalog.board("pico").power_mw == {}
    assert "nRF52840 Product Specification" in catalog.board("nano33ble").sources["power"]
