from __future__ import annotations

import os

import numpy as np
import pytest

from tinymlaas.agent import DirectoryWatcher, GestureStream, ReplaySource
from tinymlaas.data.generators import gestures
from tinymlaas.errors import InvalidInput


def test_the_gesture_stream_is_endless_and_seeded():
    stream = GestureStream(seed=3, chunk=4)
    windows = [stream.read() for _ in range(10)]
    assert stream.shape == (64, 3)
    assert all(w.shape == (64, 3) and w.dtype == np.float32 for w in windows)
    assert stream.last_label in gestures.LABELS
    assert not np.array_equal(windows[0], windows[4])  # the next chunk draws new windows
    again = GestureStream(seed=3, chunk=4)
    assert all(np.array_equal(again.read(), w) for w in windows)


def test_replay_cycles_through_a_recording(tmp_path):
    x = np.arange(3 * 8 * 2, dtype=np.float32).reshape(3, 8, 2)
    np.savez(tmp_path / "rec.npz", x=x, y=np.array(["a", "b", "a"]))
    source = ReplaySource(tmp_path / "rec.npz")
    assert source.shape == (8, 2)
    read = [source.read() for _ in range(4)]
    assert np.array_equal(read[0], x[0]) and np.array_equal(read[2], x[2]) and np.array_equal(read[3], x[0])


def test_the_watcher_yields_each_new_file_once_in_name_order(tmp_path):
    watcher = DirectoryWatcher(tmp_path)
    assert watcher.read() is None and watcher.shape is None
    np.save(tmp_path / "b.npy", np.ones((4, 3), np.float32))
    (tmp_path / "a.csv").write_text("x,y,z\n1,2,3\n4,5,6\n")
    (tmp_path / "c.csv").write_text("not,numbers\nat,all\n")
    (tmp_path / ".d.npy.tmp").write_bytes(b"partial")
    (tmp_path / "notes.txt").write_text("ignored")
    first = watcher.read()
    assert np.array_equal(first, [[1, 2, 3], [4, 5, 6]]) and watcher.shape == (2, 3)
    assert np.array_equal(watcher.read(), np.ones((4, 3)))
    assert watcher.read() is None and watcher.rejected == 1
    np.save(tmp_path / ".e.npy", np.zeros(3))
    os.replace(tmp_path / ".e.npy", tmp_path / "e.npy")
    assert np.array_equal(watcher.read(), np.zeros(3))
    assert watcher.read() is None


def test_sources_refuse_bad_arguments(tmp_path):
    with pytest.raises(InvalidInput):
        GestureStream(seed=-1)
    with pytest.raises(InvalidInput):
        DirectoryWatcher(tmp_path / "missing")
