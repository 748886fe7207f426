from __future__ import annotations

import pytest

from tinymlaas.agent.buffer import SampleBuffer
from tinymlaas.errors import InvalidInput


def _ids(buffer: SampleBuffer) -> list[str]:
    return [sample.sample_id for sample in buffer.peek(1000)]


def test_samples_come_back_oldest_first_with_payload_and_meta(tmp_path):
    buffer = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=100)
    for i in (3, 1, 2):
        assert buffer.put(f"s{i}", bytes([i]) * 4, {"label": f"l{i}", "t": i})
    first, second = buffer.peek(2)
    assert (first.sample_id, first.payload, dict(first.meta)) == ("s3", b"\x03" * 4, {"label": "l3", "t": 3})
    assert second.sample_id == "s1"
    assert _ids(buffer) == ["s3", "s1", "s2"]
    assert buffer.peek(0) == []


def test_peek_leaves_samples_and_ack_removes_them(tmp_path):
    buffer = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=100)
    for i in range(4):
        buffer.put(f"s{i}", b"x", {})
    assert len(buffer.peek(2)) == 2
    assert buffer.stats().items == 4
    assert buffer.ack(["s0", "s2", "never-buffered"]) == 2
    assert buffer.ack(["s0"]) == 0
    assert _ids(buffer) == ["s1", "s3"]
    assert buffer.stats().items == 2


def test_a_sample_already_waiting_is_not_stored_twice(tmp_path):
    buffer = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=100)
    assert buffer.put("s1", b"first", {})
    assert not buffer.put("s1", b"second", {})
    assert [s.payload for s in buffer.peek(10)] == [b"first"]
    buffer.ack(["s1"])
    assert buffer.put("s1", b"again", {})


def test_the_item_bound_drops_the_oldest_and_counts_it(tmp_path):
    buffer = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=3)
    for i in range(5):
        assert buffer.put(f"s{i}", b"x", {})
    assert _ids(buffer) == ["s2", "s3", "s4"]
    assert buffer.stats().dropped == 2


def test_the_byte_bound_drops_the_oldest_and_counts_it(tmp_path):
    probe = SampleBuffer(tmp_path / "probe", max_bytes=1 << 20, max_items=10)
    probe.put("s0", b"p" * 100, {})
    size = probe.stats().bytes  # one sample's file, header included
    buffer = SampleBuffer(tmp_path / "outbox", max_bytes=3 * size, max_items=100)
    for i in range(4):
        buffer.put(f"s{i}", b"p" * 100, {})
    stats = buffer.stats()
    assert _ids(buffer) == ["s1", "s2", "s3"]
    assert (stats.items, stats.bytes, stats.dropped) == (3, 3 * size, 1)
    assert stats.bytes == sum(p.stat().st_size for p in (tmp_path / "outbox").glob("*.sample"))


def test_a_larger_sample_evicts_as_many_as_it_needs(tmp_path):
    buffer = SampleBuffer(tmp_path, max_bytes=600, max_items=100)
    for i in range(5):
        buffer.put(f"small{i}", b"s" * 60, {})
    buffer.put("big", b"b" * 400, {})
    # Each small sample's file is 89 bytes and the big one's 426: four small ones must go.
    assert _ids(buffer) == ["small4", "big"]
    assert (buffer.stats().bytes, buffer.stats().dropped) == (89 + 426, 4)


def test_what_cannot_be_stored_is_refused(tmp_path):
    buffer = SampleBuffer(tmp_path, max_bytes=100, max_items=10)
    with pytest.raises(InvalidInput, match="over the outbox size"):
        buffer.put("huge", b"h" * 200, {})
    with pytest.raises(InvalidInput, match="meta must be JSON"):
        buffer.put("odd", b"", {"when": object()})
    with pytest.raises(InvalidInput):
        SampleBuffer(tmp_path / "none", max_bytes=0, max_items=1)
    assert buffer.stats().items == 0


def test_everything_survives_a_restart(tmp_path):
    buffer = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=3)
    for i in range(5):
        buffer.put(f"s{i}", f"payload {i}".encode(), {"i": i})
    buffer.ack(["s3"])
    reopened = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=3)
    assert [(s.sample_id, s.payload, s.meta["i"]) for s in reopened.peek(10)] == [
        ("s2", b"payload 2", 2),
        ("s4", b"payload 4", 4),
    ]
    assert reopened.stats() == buffer.stats()
    assert not reopened.put("s4", b"dup", {})
    reopened.put("s5", b"new", {})
    assert _ids(reopened) == ["s2", "s4", "s5"]


def test_reopening_with_smaller_bounds_drops_the_oldest(tmp_path):
    buffer = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=10)
    for i in range(6):
        buffer.put(f"s{i}", b"x", {})
    smaller = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=4)
    assert _ids(smaller) == ["s2", "s3", "s4", "s5"]
    assert SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=4).stats().dropped == 2


def test_a_crash_before_the_rename_leaves_no_half_sample(tmp_path):
    buffer = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=10)
    buffer.put("s0", b"whole", {})
    # What a power cut between writing the temporary file and renaming it leaves behind.
    (tmp_path / "00000000000000000001.sample.tmp").write_bytes(b'{"id": "s1", "me')
    (tmp_path / ".state.json.abc123.tmp").write_bytes(b"{")
    reopened = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=10)
    assert _ids(reopened) == ["s0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000000000000000000.sample"]
    assert reopened.put("s1", b"retried", {})
    assert [s.payload for s in reopened.peek(10)] == [b"whole", b"retried"]


def test_a_sample_whose_rename_never_happened_is_swept_on_reopening(tmp_path, monkeypatch):
    buffer = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=10)
    buffer.put("s0", b"whole", {})
    # The power goes after the temporary file is synced and before os.replace renames it.
    monkeypatch.setattr("tinymlaas.files.os.replace", lambda source, target: None)
    buffer.put("s1", b"lost", {})
    monkeypatch.undo()
    assert any(p.name.startswith(".") and p.name.endswith(".tmp") for p in tmp_path.iterdir())
    reopened = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=10)
    assert _ids(reopened) == ["s0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["00000000000000000000.sample"]


def test_an_unreadable_sample_is_removed_and_counted_as_dropped(tmp_path):
    buffer = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=10)
    buffer.put("s0", b"x", {})
    buffer.put("s1", b"y", {})
    (tmp_path / "00000000000000000000.sample").write_bytes(b"not json\npayload")
    reopened = SampleBuffer(tmp_path, max_bytes=1 << 20, max_items=10)
    assert _ids(reopened) == ["s1"]
    assert reopened.stats().dropped == 1


def test_a_corrupt_state_file_is_reported(tmp_path):
    SampleBuffer(tmp_path, max_bytes=10, max_items=1)
    (tmp_path / "state.json").write_text("[]")
    with pytest.raises(InvalidInput, match="cannot be read"):
        SampleBuffer(tmp_path, max_bytes=10, max_items=1)
