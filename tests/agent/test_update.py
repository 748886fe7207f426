from __future__ import annotations

import itertools

import pytest

from tinymlaas.agent import TRANSITIONS, UpdateResult, UpdateState, UpdateTracker
from tinymlaas.errors import InvalidInput


def _tracker_at(state_dir, state: UpdateState) -> UpdateTracker:
    tracker = UpdateTracker(state_dir)
    path = {
        UpdateState.INITIAL: [],
        UpdateState.DOWNLOAD_STARTED: [UpdateState.DOWNLOAD_STARTED],
        UpdateState.DOWNLOADED: [UpdateState.DOWNLOAD_STARTED, UpdateState.DOWNLOADED],
        UpdateState.DELIVERED: [UpdateState.DOWNLOAD_STARTED, UpdateState.DOWNLOADED, UpdateState.DELIVERED],
        UpdateState.INSTALLED: [
            UpdateState.DOWNLOAD_STARTED,
            UpdateState.DOWNLOADED,
            UpdateState.DELIVERED,
            UpdateState.INSTALLED,
        ],
    }[state]
    for step in path:
        tracker.move(step, UpdateResult.DOWNLOADING)
    assert tracker.state is state
    return tracker


def test_the_codes_are_those_of_lwm2m_object_9():
    assert [int(s) for s in UpdateState] == [0, 1, 2, 3, 4]
    assert {int(r) for r in UpdateResult} == {0, 1, 2, 3, 50, 51, 52, 53, 54, 56, 57, 58, 59}
    assert UpdateResult.INSTALLATION_FAILURE == 58
    assert UpdateResult.NOT_ENOUGH_STORAGE == 50


def test_every_state_has_a_row_and_installed_is_reachable():
    assert set(TRANSITIONS) == set(UpdateState)
    assert UpdateState.INSTALLED in TRANSITIONS[UpdateState.DELIVERED]


@pytest.mark.parametrize(("start", "to"), list(itertools.product(UpdateState, UpdateState)))
def test_every_pair_moves_only_along_the_table(tmp_path, start, to):
    tracker = _tracker_at(tmp_path, start)
    if to in TRANSITIONS[start]:
        tracker.move(to, UpdateResult.INITIAL)
        assert tracker.state is to
        assert UpdateTracker(tmp_path).state is to
    else:
        with pytest.raises(InvalidInput, match=f"{start.name} to {to.name}"):
            tracker.move(to, UpdateResult.INITIAL)
        assert UpdateTracker(tmp_path).state is start


def test_state_result_and_package_survive_a_restart(tmp_path):
    tracker = _tracker_at(tmp_path, UpdateState.DOWNLOADED)
    tracker.move(UpdateState.DELIVERED, UpdateResult.DOWNLOADED_VERIFIED, package="abc")
    tracker.report(UpdateResult.INSTALLATION_FAILURE, detail="self-test failed")
    again = UpdateTracker(tmp_path)
    assert (again.state, again.result, again.detail, again.package) == (
        UpdateState.DELIVERED,
        UpdateResult.INSTALLATION_FAILURE,
        "self-test failed",
        "abc",
    )
    again.move(UpdateState.INITIAL, UpdateResult.INITIAL)
    assert UpdateTracker(tmp_path).package is None


def test_an_unreadable_state_file_is_reported(tmp_path):
    (tmp_path / "update.json").write_text("{not json")
    with pytest.raises(InvalidInput, match="cannot be read"):
        UpdateTracker(tmp_path)
