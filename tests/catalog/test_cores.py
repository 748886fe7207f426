"""Per-core timing figures: the built-in file loads, bad files are refused, estimates add up."""

from __future__ import annotations

from pathlib import Path

import pytest

from tinymlaas.catalog import load_catalog
from tinymlaas.catalog.cores import CoreTiming, core_timing, estimate_ms, load_core_timings
from tinymlaas.errors import InvalidInput

GOOD = """\
[my-core]
cpi = 1.25
cpi_low = 1
cpi_high = 2.0
source = "timing table, with the instruction mix stated"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cores.toml"
    path.write_text(text)
    return path


def test_good_file_loads(tmp_path):
    timings = load_core_timings(write(tmp_path, GOOD))
    assert timings == {
        "my-core": CoreTiming(
            core="my-core",
            cpi=1.25,
            cpi_low=1.0,
            cpi_high=2.0,
            source="timing table, with the instruction mix stated",
        )
    }


def test_builtin_covers_every_mcu_core_it_has_a_source_for():
    timings = load_core_timings()
    mcu_cores = {board.core for board in load_catalog().boards.values() if board.board_class.value == "mcu"}
    assert {"cortex-m0plus", "cortex-m4f", "cortex-m7"} <= set(timings)
    assert set(timings) <= mcu_cores
    for timing in timings.values():
        assert timing.source.strip()
        assert 0 < timing.cpi_low <= timing.cpi <= timing.cpi_high


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            GOOD.replace('source = "timing table, with the instruction mix stated"\n', ""),
            "missing field 'source'",
        ),
        (GOOD.replace('"timing table, with the instruction mix stated"', '"  "'), "source is empty"),
        (GOOD.replace("cpi_high = 2.0\n", ""), "missing field 'cpi_high'"),
        (GOOD.replace("cpi = 1.25", 'cpi = "1.25"'), "must be a number"),
        (GOOD.replace("cpi = 1.25", "cpi = true"), "must be a number"),
        (GOOD.replace("cpi = 1.25", "cpi = 2.5"), "cpi_low <= cpi <= cpi_high"),
        (GOOD.replace("cpi_low = 1", "cpi_low = 0"), "0 < cpi_low"),
        (GOOD + "notes = 'x'\n", "unknown field(s) notes"),
        (GOOD.replace("[my-core]", '["My Core"]'), "not a valid slug"),
        ("[my-core\n", "cannot read it as TOML"),
    ],
)
def test_bad_file_is_refused(tmp_path, text, message):
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_core_timings(write(tmp_path, text))


def test_unknown_core_has_no_estimate():
    assert core_timing("xtensa-lx7") is None
    assert estimate_ms(1_000_000, "xtensa-lx7", 240) is None


def test_estimate_arithmetic():
    timing = core_timing("cortex-m4f")
    assert timing is not None
    estimate, low, high = estimate_ms(64_000_000, "cortex-m4f", 64)
    # 64 M instructions at 64 MHz: one second per unit of CPI.
    assert estimate == pytest.approx(1000 * timing.cpi)
    assert low == pytest.approx(1000 * timing.cpi_low)
    assert high == pytest.approx(1000 * timing.cpi_high)
    assert low <= estimate <= high


def test_estimate_rejects_nonsense():
    with pytest.raises(InvalidInput):
        estimate_ms(-1, "cortex-m4f", 64)
    with pytest.raises(InvalidInput):
        estimate_ms(1, "cortex-m4f", 0)
