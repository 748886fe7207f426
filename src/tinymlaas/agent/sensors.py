"""Where the agent's input windows come from: a live stream, a recording, or files dropped in a folder.

A board's real sensor driver is out of reach of an emulated device, so each source here stands in for
one: ``GestureStream`` for an accelerometer worn on the wrist (the gestures generator, endless),
``ReplaySource`` for a recording made earlier (an ``.npz`` played in a loop), and ``DirectoryWatcher``
for a device whose samples are written by another process (each new file is one window). The inference
loop asks a source for one window per tick; ``None`` means nothing new right now, not the end.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from tinymlaas.data.generators import gestures
from tinymlaas.data.importers import import_path
from tinymlaas.errors import InvalidInput

__all__ = ["DirectoryWatcher", "GestureStream", "ReplaySource", "SensorSource"]


class SensorSource(ABC):
    """One window at a time, float32, for the inference loop."""

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...] | None:
        """The shape of every window, or None when the source learns it from its data."""

    @abstractmethod
    def read(self) -> np.ndarray | None:
        """The next window, or None when no new window is available yet."""


class GestureStream(SensorSource):
    """Endless accelerometer windows (64 steps x 3 axes, in g) from the gestures generator.

    Windows are drawn ``chunk`` at a time, each chunk with the next seed, so one stream never repeats
    and two streams with the same seed produce the same windows. ``last_label`` is the gesture the
    last window shows, which a demo can print beside the model's answer.
    """

    def __init__(self, seed: int = 0, *, chunk: int = 64) -> None:
        if seed < 0 or chunk < 1:
            raise InvalidInput(f"A gesture stream needs seed >= 0 and chunk >= 1, got {seed} and {chunk}")
        self._seed = seed
        self._chunk = chunk
        self._windows = self._generate()
        self.last_label: str | None = None

    def _generate(self) -> Iterator[tuple[np.ndarray, str | None]]:
        draw = 0
        while True:
            data = gestures.generate(self._chunk, seed=self._seed + draw)
            draw += 1
            for sample in data.samples:
                yield sample.x, sample.label

    @property
    def shape(self) -> tuple[int, ...]:
        return gestures.SPEC.input_shape

    def read(self) -> np.ndarray:
        x, self.last_label = next(self._windows)
        return x


class ReplaySource(SensorSource):
    """The samples of a recorded dataset file (``.npz`` with ``x`` and ``y``, or ``.csv``), in a loop.

    ``last_label`` is the recorded label of the window read last (None for an unlabelled sample), so a
    pipeline's last stage can count its correct results.
    """

    def __init__(self, path: Path) -> None:
        data = import_path(Path(path))
        if not data.samples:
            raise InvalidInput(f"{Path(path).name}: the recording holds no samples to replay")
        self._windows = [np.asarray(sample.x, np.float32) for sample in data.samples]
        self._labels = [sample.label for sample in data.samples]
        self._shape = tuple(data.spec.input_shape)
        self._next = 0
        self.last_label: str | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self._shape

    def read(self) -> np.ndarray:
        window, self.last_label = self._windows[self._next], self._labels[self._next]
        self._next = (self._next + 1) % len(self._windows)
        return window


class DirectoryWatcher(SensorSource):
    """Each ``.npy`` or ``.csv`` file that appears in ``directory`` is one window, read once, in name order.

    Writers should create a file under another name (a leading dot or another suffix) and rename it
    into place, so a window is never read half-written. A file that cannot be read as a numeric array
    is skipped and counted in ``rejected``. ``shape`` is the shape of the last window read.
    """

    SUFFIXES = (".npy", ".csv")

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        if not self.directory.is_dir():
            raise InvalidInput(f"{self.directory}: not a directory to watch")
        self._seen: set[str] = set()
        self._shape: tuple[int, ...] | None = None
        self.rejected = 0

    @property
    def shape(self) -> tuple[int, ...] | None:
        return self._shape

    def read(self) -> np.ndarray | None:
        names = sorted(
            entry.name
            for entry in self.directory.iterdir()
            if entry.suffix.lower() in self.SUFFIXES
            and not entry.name.startswith(".")
            and entry.name not in self._seen
        )
        for name in names:
            self._seen.add(name)
            window = _load_window(self.directory / name)
            if window is None:
                self.rejected += 1
                continue
            self._shape = tuple(window.shape)
            return window
        return None


def _load_window(path: Path) -> np.ndarray | None:
    """A numeric array from one file, or None; pickles are refused, a CSV may have one header row."""
    try:
        if path.suffix.lower() == ".npy":
            array = np.load(path, allow_pickle=False)
        else:
            try:
                array = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
            except ValueError:
                array = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2, skiprows=1)
        window = np.asarray(array, dtype=np.float32)
    except (OSError, ValueError):
        return None
    if window.size == 0 or not np.all(np.isfinite(window)):
        return None
    return window
