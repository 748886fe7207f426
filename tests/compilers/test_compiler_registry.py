from __future__ import annotations

from importlib import metadata
from typing import ClassVar

import pytest

from tinymlaas.catalog.board import BoardClass
from tinymlaas.compilers import (
    Compiler,
    PluginLoadError,
    available_compilers,
    compiler_for,
    get_compiler,
    refresh_compilers,
)
from tinymlaas.compilers.litert import LiteRtCompiler
from tinymlaas.compilers.registry import ENTRY_POINT_GROUP
from tinymlaas.compilers.tflm import TflmCompiler
from tinymlaas.errors import InvalidInput, NotFound

from .conftest import make_board


class VendorTflm(Compiler):
    """A second plugin for the tflm runtime, as a vendor package might ship."""

    name: ClassVar[str] = "vendor-tflm"
    runtime: ClassVar[str] = "tflm"

    def compile_files(self, variant, board):
        return {}


@pytest.fixture(autouse=True)
def fresh_registry():
    refresh_compilers()
    yield
    refresh_compilers()


def _entry_point(name: str, value: str) -> metadata.EntryPoint:
    return metadata.EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP)


@pytest.fixture
def installed(monkeypatch):
    """Replace the installed plugins with the given entry points."""

    def install(*entry_points: metadata.EntryPoint) -> None:
        def fake_entry_points(**params):
            assert params == {"group": ENTRY_POINT_GROUP}
            return metadata.EntryPoints(entry_points)

        monkeypatch.setattr(metadata, "entry_points", fake_entry_points)
        refresh_compilers()

    return install


BUILT_INS = (
    _entry_point("tflm", "tinymlaas.compilers.tflm:TflmCompiler"),
    _entry_point("litert", "tinymlaas.compilers.litert:LiteRtCompiler"),
)


def test_built_ins_are_found_through_entry_points():
    compilers = available_compilers()
    assert compilers["tflm"] is TflmCompiler
    assert compilers["litert"] is LiteRtCompiler


def test_the_returned_mapping_is_a_copy():
    available_compilers().clear()
    assert "tflm" in available_compilers()


def test_get_compiler_returns_an_instance():
    assert isinstance(get_compiler("tflm"), TflmCompiler)
    assert isinstance(get_compiler("litert"), LiteRtCompiler)


def test_an_unknown_compiler_lists_the_installed_ones():
    with pytest.raises(NotFound, match=r"'nope'.*litert, native, tflm"):
        get_compiler("nope")


def test_a_plugin_that_is_not_a_compiler_is_named(installed):
    installed(*BUILT_INS, _entry_point("bogus", "collections:OrderedDict"))
    with pytest.raises(PluginLoadError, match=r"'bogus'.*collections:OrderedDict.*not a subclass"):
        available_compilers()


def test_a_plugin_that_fails_to_import_is_named(installed):
    installed(_entry_point("broken", "tinymlaas_no_such_module:Compiler"))
    with pytest.raises(PluginLoadError, match=r"'broken'.*ModuleNotFoundError"):
        get_compiler("tflm")


def test_an_abstract_plugin_is_rejected(installed):
    installed(_entry_point("abstract", "tinymlaas.compilers.base:Compiler"))
    with pytest.raises(PluginLoadError, match="abstract"):
        available_compilers()


def test_entry_point_and_class_must_agree_on_the_name(installed):
    installed(_entry_point("other", "tinymlaas.compilers.tflm:TflmCompiler"))
    with pytest.raises(PluginLoadError, match=r"names itself 'tflm'"):
        available_compilers()


def test_board_preference_order_picks_the_compiler(mcu_board, linux_board):
    assert isinstance(compiler_for(mcu_board), TflmCompiler)
    assert isinstance(compiler_for(linux_board), LiteRtCompiler)
    assert isinstance(compiler_for(linux_board, "tflm"), TflmCompiler)


def test_a_runtime_the_board_lacks_is_invalid(mcu_board):
    with pytest.raises(InvalidInput, match=r"nano-33-ble.*'litert'.*supports: tflm"):
        compiler_for(mcu_board, "litert")


def test_a_board_no_plugin_targets_is_not_found():
    board = make_board("odd", BoardClass.MCU, ("tvm",), "cortex-m7")
    with pytest.raises(NotFound, match=r"tvm.*odd"):
        compiler_for(board)


def test_the_reference_plugin_wins_over_others_for_its_runtime(installed, mcu_board):
    installed(*BUILT_INS, _entry_point("vendor-tflm", f"{__name__}:VendorTflm"))
    assert set(available_compilers()) == {"litert", "tflm", "vendor-tflm"}
    assert isinstance(compiler_for(mcu_board), TflmCompiler)
    assert isinstance(get_compiler("vendor-tflm"), VendorTflm)
