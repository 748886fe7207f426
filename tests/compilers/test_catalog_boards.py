"""The compilers against the shipped board catalog: every board gets a module, the op lists agree."""

from __future__ import annotations

import pytest

from tinymlaas.catalog import load_catalog
from tinymlaas.compilers import compiler_for, refresh_compilers
from tinymlaas.compilers.tflm import TFLM_BUILTIN_OPS

CATALOG = load_catalog()


def test_every_op_the_catalog_admits_for_tflm_can_be_registered():
    supported = CATALOG.runtime("tflm").supported_ops
    assert supported is not None
    assert supported <= TFLM_BUILTIN_OPS


@pytest.mark.parametrize("board_id", sorted(CATALOG.boards))
def test_every_built_in_board_gets_a_module_for_its_preferred_runtime(board_id, variant):
    refresh_compilers()
    board = CATALOG.board(board_id)
    compiler = compiler_for(board)
    assert compiler.runtime == board.runtimes[0]
    module = compiler.compile(variant, board, flash_bytes=1, ram_bytes=1)
    assert module.manifest["board"] == board_id
    assert set(module.manifest["files"]) == set(module.files)
