"""Package sequences as the server issues them: growing per model line, whatever the clock does."""

from __future__ import annotations

import json
from concurrent.futures import ProcessPoolExecutor

import pytest

from tinymlaas.deploy.signing import SEQUENCES_NAME, issue_sequence
from tinymlaas.errors import InvalidInput

FROZEN_NS = 1_700_000_000_123_456_789


def _frozen_clock() -> int:
    return FROZEN_NS


def _issue_frozen(directory) -> int:
    return issue_sequence(directory, "gestures", clock=_frozen_clock)


def test_a_sequence_is_the_signing_time_in_microseconds(tmp_path):
    assert issue_sequence(tmp_path, "gestures", clock=_frozen_clock) == FROZEN_NS // 1000
    assert json.loads((tmp_path / SEQUENCES_NAME).read_text()) == {"gestures": FROZEN_NS // 1000}


def test_sequences_keep_growing_when_the_clock_stands_still_or_steps_back(tmp_path):
    readings = iter([FROZEN_NS, FROZEN_NS, FROZEN_NS - 3_600 * 10**9, FROZEN_NS + 5_000])
    issued = [issue_sequence(tmp_path, "gestures", clock=lambda: next(readings)) for _ in range(4)]
    start = FROZEN_NS // 1000
    assert issued == [start, start + 1, start + 2, start + 5]


def test_each_model_line_counts_on_its_own(tmp_path):
    first = issue_sequence(tmp_path, "gestures", clock=_frozen_clock)
    assert issue_sequence(tmp_path, "gestures", clock=_frozen_clock) == first + 1
    assert issue_sequence(tmp_path, "keywords", clock=_frozen_clock) == first


def test_the_record_survives_the_process_and_a_clock_set_back(tmp_path):
    issue_sequence(tmp_path, "gestures", clock=_frozen_clock)
    # A server restarted with its clock a day behind still signs newer packages.
    later = issue_sequence(tmp_path, "gestures", clock=lambda: FROZEN_NS - 86_400 * 10**9)
    assert later == FROZEN_NS // 1000 + 1


def test_processes_signing_at_once_never_share_a_sequence(tmp_path):
    with ProcessPoolExecutor(4) as pool:
        issued = list(pool.map(_issue_frozen, [tmp_path] * 24))
    assert sorted(issued) == list(range(FROZEN_NS // 1000, FROZEN_NS // 1000 + 24))


def test_an_unreadable_record_is_named_and_not_overwritten(tmp_path):
    (tmp_path / SEQUENCES_NAME).write_text('{"gestures": "soon"}')
    with pytest.raises(InvalidInput, match=f"{SEQUENCES_NAME} is not an object of model line -> integer"):
        issue_sequence(tmp_path, "gestures")
    assert (tmp_path / SEQUENCES_NAME).read_text() == '{"gestures": "soon"}'
