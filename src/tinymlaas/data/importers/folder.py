"""Import a folder tree whose first-level folders name the classes: ``root/<class name>/<files>``.

Files at any depth below a class folder belong to that class, so recordings grouped further (by
person, by session) need no flattening. The file extension decides what a sample is:

- ``.png``/``.jpg``/``.jpeg`` → IMAGE, pixels scaled to [0, 1]. Grayscale stays one channel, every
  other mode becomes RGB. Alpha is dropped rather than blended, as Keras' image loaders do, so a file
  yields the same pixels here as in a Keras pipeline. JPEG EXIF rotation is applied, so photos keep
  the orientation they are shown in.
- ``.wav`` → AUDIO, 8/16/24/32-bit integer PCM scaled to [-1, 1]. Multi-channel files are downmixed
  by averaging the channels: device microphones are mono, and the average keeps a centred source at
  its level. All files of one import must share one sample rate, since the shape alone cannot tell
  a 1 s clip at 8 kHz from a 0.5 s clip at 16 kHz.
- ``.csv`` → TIMESERIES window: rows are time steps, columns channels, with an optional header row
  (recognised by holding no number).

Dot-files and dot-folders are skipped (``.DS_Store``, ``.git``); links leading out of the root are
refused, so an uploaded archive cannot make the importer read files elsewhere.
"""

from __future__ import annotations

import wave
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from tinymlaas.data.importers._text import column_label, is_number, parse_number, read_rows
from tinymlaas.data.types import DatasetSpec, ImportedData, LabelledSample, SampleKind, Task
from tinymlaas.errors import InvalidInput

__all__ = ["import_folder"]

_KIND_BY_EXTENSION = {
    ".png": SampleKind.IMAGE,
    ".jpg": SampleKind.IMAGE,
    ".jpeg": SampleKind.IMAGE,
    ".wav": SampleKind.AUDIO,
    ".csv": SampleKind.TIMESERIES,
}
_SUPPORTED = ", ".join(sorted(_KIND_BY_EXTENSION))
# Pillow modes holding one 16-bit gray value per pixel (16-bit grayscale PNG).
_WIDE_GRAY_MODES = frozenset({"I", "I;16", "I;16L", "I;16B", "I;16N"})


def import_folder(root: Path, *, spec: DatasetSpec | None = None) -> ImportedData:
    """Read every sample file under ``root``, labelled by its class folder.

    With ``spec`` (adding to an existing dataset) every file must match its kind and input shape and
    use one of its labels; without it the spec is inferred: classification, the kind of the files,
    their common shape, and the sorted class folder names as labels.
    """
    if spec is not None and spec.task is not Task.CLASSIFICATION:
        raise InvalidInput(
            f"{root.name}: a folder import labels samples by class folder, but the dataset is {spec.task}"
        )
    files = _collect(root)
    kind = _common_kind(files)
    if spec is not None and spec.kind is not kind:
        raise InvalidInput(
            f"{files[0][1]}: the folder holds {kind} samples but the dataset holds {spec.kind}"
        )
    read = _READERS[kind]

    expected = spec.input_shape if spec is not None else None
    shape_origin = "the dataset's input shape"
    rate: tuple[int, str] | None = None
    samples: list[LabelledSample] = []
    for path, source, label in files:
        x, sample_rate = read(path, source)
        if expected is None:
            expected, shape_origin = tuple(x.shape), f"the shape of {files[0][1]}"
        elif tuple(x.shape) != expected:
            raise InvalidInput(
                f"{source}: shape {tuple(x.shape)} does not match the expected shape {expected} "
                f"({shape_origin}); all samples of a dataset share one shape"
            )
        if sample_rate is not None:
            if rate is None:
                rate = (sample_rate, source)
            elif sample_rate != rate[0]:
                raise InvalidInput(
                    f"{source}: sample rate {sample_rate} Hz differs from {rate[0]} Hz of {rate[1]}; "
                    "resample the files to one rate"
                )
        samples.append(LabelledSample(x=x, source=source, label=label))

    if spec is None:
        assert expected is not None  # _collect guarantees at least one file
        spec = DatasetSpec(
            task=Task.CLASSIFICATION,
            kind=kind,
            input_shape=expected,
            labels=tuple(sorted({label for _, _, label in files})),
        )
    return ImportedData(spec=spec, samples=tuple(samples))


def _collect(root: Path) -> list[tuple[Path, str, str]]:
    """(path, source, label) of every sample file, depth first with names sorted, so runs agree."""
    if not root.is_dir():
        problem = "not a folder" if root.exists() else "no such folder"
        raise InvalidInput(f"{root.name or root}: {problem}")
    base = root.resolve()
    children = _visible_children(root)
    if not children:
        raise InvalidInput(f"{root.name}: the folder is empty; expected <folder>/<class name>/<files>")
    files: list[tuple[Path, str, str]] = []
    seen: set[Path] = set()
    for child in children:
        _refuse_escape(child, base, child.name)
        if not child.is_dir():
            raise InvalidInput(
                f"{child.name}: a file directly in the import folder; put each file in a folder named "
                "after its class"
            )
        found = [(path, source, child.name) for path, source in _walk(child, root, base, seen)]
        if not found:
            raise InvalidInput(f"{child.name}/: the class folder holds no sample files")
        files.extend(found)
    return files


def _visible_children(directory: Path) -> list[Path]:
    return sorted((p for p in directory.iterdir() if not p.name.startswith(".")), key=lambda p: p.name)


def _walk(directory: Path, root: Path, base: Path, seen: set[Path]) -> Iterator[tuple[Path, str]]:
    # A link back to an ancestor inside the root would otherwise recurse for ever.
    real = directory.resolve()
    if real in seen:
        return
    seen.add(real)
    for entry in _visible_children(directory):
        source = entry.relative_to(root).as_posix()
        _refuse_escape(entry, base, source)
        if entry.is_dir():
            yield from _walk(entry, root, base, seen)
        elif entry.is_file():
            yield entry, source
        else:
            raise InvalidInput(f"{source}: not a regular file")


def _refuse_escape(entry: Path, base: Path, source: str) -> None:
    if not entry.is_symlink():
        return
    try:
        target = entry.resolve(strict=True)
    except (OSError, RuntimeError):
        raise InvalidInput(f"{source}: a link to nothing (broken or looping)") from None
    if not target.is_relative_to(base):
        raise InvalidInput(f"{source}: a link pointing outside the import folder; refused")


def _common_kind(files: list[tuple[Path, str, str]]) -> SampleKind:
    first: tuple[SampleKind, str] | None = None
    for path, source, _ in files:
        extension = path.suffix.lower()
        kind = _KIND_BY_EXTENSION.get(extension)
        if kind is None:
            what = f"unsupported file type {extension!r}" if extension else "no file extension"
            raise InvalidInput(f"{source}: {what}; supported are {_SUPPORTED}")
        if first is None:
            first = (kind, source)
        elif kind is not first[0]:
            raise InvalidInput(
                f"{source}: a {kind} file, but {first[1]} is {first[0]}; one import holds one kind of sample"
            )
    assert first is not None  # _collect never returns an empty list
    return first[0]


def _read_image(path: Path, source: str) -> tuple[np.ndarray, int | None]:
    try:
        with Image.open(path) as opened:
            opened.load()
            image = ImageOps.exif_transpose(opened)
            return _pixels(image, source), None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"{source}: not a readable image ({exc})") from exc


def _pixels(image: Image.Image, source: str) -> np.ndarray:
    if image.mode in _WIDE_GRAY_MODES:
        values = np.asarray(image, dtype=np.float64)
        if values.min() < 0 or values.max() > 65535:
            raise InvalidInput(f"{source}: pixel values outside the 16-bit range")
        return (values / 65535.0).astype(np.float32)[..., np.newaxis]
    if image.mode in ("1", "L", "LA", "La"):
        return (np.asarray(image.convert("L"), dtype=np.float32) / 255.0)[..., np.newaxis]
    if image.mode in ("P", "PA"):
        # Going through RGBA applies a palette's transparency entry the way Pillow expects.
        image = image.convert("RGBA")
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def _read_wav(path: Path, source: str) -> tuple[np.ndarray, int | None]:
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.getnframes()
            raw = wav.readframes(frames)
    except (wave.Error, EOFError, OSError) as exc:
        raise InvalidInput(f"{source}: not a readable PCM WAV file ({exc})") from exc
    if frames == 0:
        raise InvalidInput(f"{source}: the WAV file holds no audio frames")
    frame_bytes = channels * width
    if len(raw) < frames * frame_bytes:
        raise InvalidInput(
            f"{source}: truncated; the header promises {frames} frames, the file holds "
            f"{len(raw) // frame_bytes}"
        )
    samples = _pcm_to_float(raw, width, source).reshape(frames, channels)
    return samples.mean(axis=1, keepdims=True).astype(np.float32), rate


def _pcm_to_float(raw: bytes, width: int, source: str) -> np.ndarray:
    """Integer PCM to float64 in [-1, 1); WAV stores 8-bit samples unsigned, wider ones signed."""
    if width == 1:
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64) / 2.0**15
    if width == 3:
        octets = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        unsigned = octets[:, 0] | (octets[:, 1] << 8) | (octets[:, 2] << 16)
        return ((unsigned ^ 0x800000) - 0x800000).astype(np.float64) / 2.0**23
    if width == 4:
        return np.frombuffer(raw, dtype="<i4").astype(np.float64) / 2.0**31
    raise InvalidInput(f"{source}: {8 * width}-bit samples are not supported; use 8, 16, 24 or 32-bit PCM")


def _read_window(path: Path, source: str) -> tuple[np.ndarray, int | None]:
    rows = read_rows(path, source)
    if not rows:
        raise InvalidInput(f"{source}: the file is empty")
    names: list[str] | None = None
    if not any(is_number(cell) for cell in rows[0][1]):
        names = [cell.strip() for cell in rows[0][1]]
        rows = rows[1:]
        if not rows:
            raise InvalidInput(f"{source}: a header row but no data rows")
    width = len(names) if names is not None else len(rows[0][1])
    values: list[list[float]] = []
    for line, cells in rows:
        if len(cells) != width:
            raise InvalidInput(f"{source}:{line}: expected {width} columns, got {len(cells)}")
        where = f"{source}:{line}"
        values.append([parse_number(cell, where, column_label(names, i)) for i, cell in enumerate(cells)])
    return np.asarray(values, dtype=np.float32), None


# Each reader returns the sample and, for audio, its sample rate in Hz.
_READERS: dict[SampleKind, Callable[[Path, str], tuple[np.ndarray, int | None]]] = {
    SampleKind.IMAGE: _read_image,
    SampleKind.AUDIO: _read_wav,
    SampleKind.TIMESERIES: _read_window,
}
