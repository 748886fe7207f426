"""The agent's outbox: sensor samples kept on disk while the server cannot be reached.

A device keeps sampling when its link is down; the samples wait here and go out, oldest first, once
the server answers. The outbox is bounded because flash is: when a new sample does not fit, the
oldest ones are dropped, since a gap at the start of an outage costs less than losing the newest
data, and each drop is counted so the server can see how much a device lost.

On disk, in the outbox directory::

    00000000000000000042.sample   one sample: a JSON header line (id, meta), then the payload bytes
    state.json                    the ``dropped`` counter

Each sample reaches the disk through a temporary name, ``fsync`` and ``os.replace``, so a power cut
leaves the sample whole or absent; temporary leftovers are removed when the outbox is opened. One
process owns a directory at a time.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from tinymlaas.errors import InvalidInput
from tinymlaas.files import TEMP_SUFFIX, fsync_dir, write_atomic, write_json_atomic

__all__ = ["BufferStats", "BufferedSample", "SampleBuffer"]

_SUFFIX = ".sample"
_STATE_FILE = "state.json"


@dataclass(frozen=True)
class BufferedSample:
    """One sample waiting for delivery."""

    sample_id: str
    payload: bytes
    meta: Mapping[str, Any]


@dataclass(frozen=True)
class BufferStats:
    """``bytes`` is the size of the sample files on disk, headers included; ``dropped`` counts all time."""

    items: int
    bytes: int
    dropped: int
    max_items: int
    max_bytes: int


@dataclass(frozen=True)
class _Entry:
    seq: int
    size: int


class SampleBuffer:
    """A bounded FIFO of samples in ``directory``, by count (``max_items``) and size (``max_bytes``)."""

    def __init__(self, directory: Path, max_bytes: int, max_items: int) -> None:
        if max_bytes < 1 or max_items < 1:
            raise InvalidInput(
                f"An outbox needs room for something, got {max_bytes} bytes and {max_items} items"
            )
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.max_items = max_items
        self.directory.mkdir(parents=True, exist_ok=True)
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._dropped = 0
        self._next_seq = 0
        self._open()

    def _open(self) -> None:
        """Clean up after a crash, index what is on disk, and hold the bounds in case they shrank."""
        state_path = self.directory / _STATE_FILE
        if state_path.exists():
            try:
                self._dropped = int(json.loads(state_path.read_text())["dropped"])
            except (OSError, ValueError, KeyError, TypeError) as exc:
                raise InvalidInput(f"Outbox state {state_path} cannot be read: {exc}") from exc
        found: list[tuple[int, str, int]] = []
        unreadable = 0
        for path in self.directory.iterdir():
            if path.name.endswith(TEMP_SUFFIX):
                path.unlink()
            elif path.name.endswith(_SUFFIX):
                try:
                    seq = int(path.name.removesuffix(_SUFFIX))
                    with open(path, "rb") as handle:
                        sample_id = str(json.loads(handle.readline())["id"])
                except (OSError, ValueError, KeyError, TypeError):
                    path.unlink()
                    unreadable += 1
                    continue
                found.append((seq, sample_id, path.stat().st_size))
        for seq, sample_id, size in sorted(found):
            self._entries[sample_id] = _Entry(seq, size)
            self._bytes += size
            self._next_seq = seq + 1
        self._drop_oldest(unreadable)
        fsync_dir(self.directory)

    def _path(self, seq: int) -> Path:
        return self.directory / f"{seq:020d}{_SUFFIX}"

    @staticmethod
    def _read(path: Path) -> tuple[str, Mapping[str, Any], bytes]:
        header, _, payload = path.read_bytes().partition(b"\n")
        decoded = json.loads(header)
        return str(decoded["id"]), decoded["meta"], payload

    def put(self, sample_id: str, payload: bytes, meta: Mapping[str, Any]) -> bool:
        """Keep a sample until it is acknowledged; False if a sample with this id is already waiting.

        InvalidInput if ``meta`` is not JSON or the sample alone is larger than ``max_bytes``.
        """
        if sample_id in self._entries:
            return False
        try:
            header = json.dumps({"id": sample_id, "meta": dict(meta)}, sort_keys=True).encode()
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"Sample {sample_id!r}: meta must be JSON: {exc}") from exc
        record = header + b"\n" + bytes(payload)
        if len(record) > self.max_bytes:
            raise InvalidInput(
                f"Sample {sample_id!r} takes {len(record)} bytes, over the outbox size ({self.max_bytes})"
            )
        seq = self._next_seq
        path = self._path(seq)
        write_atomic(path, record)
        self._next_seq = seq + 1
        self._entries[sample_id] = _Entry(seq, len(record))
        self._bytes += len(record)
        self._drop_oldest(0)
        return True

    def _drop_oldest(self, already_dropped: int) -> None:
        """Evict from the front until the bounds hold, and persist the counter if anything went."""
        dropped = already_dropped
        while len(self._entries) > self.max_items or self._bytes > self.max_bytes:
            _, entry = self._entries.popitem(last=False)
            self._path(entry.seq).unlink(missing_ok=True)
            self._bytes -= entry.size
            dropped += 1
        if dropped:
            self._dropped += dropped
            write_json_atomic(self.directory / _STATE_FILE, {"dropped": self._dropped})

    def peek(self, n: int) -> list[BufferedSample]:
        """The ``n`` oldest samples, oldest first, left in place until ``ack``."""
        samples = []
        for sample_id, entry in list(self._entries.items())[: max(n, 0)]:
            _, meta, payload = self._read(self._path(entry.seq))
            samples.append(BufferedSample(sample_id, payload, MappingProxyType(meta)))
        return samples

    def ack(self, sample_ids: Iterable[str]) -> int:
        """Forget delivered samples; ids not waiting (say, acknowledged twice) are ignored. Returns how
        many were removed."""
        removed = 0
        for sample_id in sample_ids:
            entry = self._entries.pop(sample_id, None)
            if entry is None:
                continue
            self._path(entry.seq).unlink(missing_ok=True)
            self._bytes -= entry.size
            removed += 1
        if removed:
            fsync_dir(self.directory)
        return removed

    def stats(self) -> BufferStats:
        """How full the outbox is and how many samples it ever had to drop."""
        return BufferStats(len(self._entries), self._bytes, self._dropped, self.max_items, self.max_bytes)
