"""Import a NumPy ``.npz`` archive: ``x`` (samples, ...) and ``y`` (samples,), optionally ``labels``.

``y`` holds class names (strings), class indices (integers; names come from ``labels`` when given,
else the indices themselves become the names "0", "1", ...) or float regression targets. The kind
of sample follows the rank of one sample: 1 → VECTOR, 2 → TIMESERIES (or AUDIO when the dataset
says so), 3 → IMAGE. uint8 images, the usual on-disk form of pixel data, are scaled to [0, 1] as
the IMAGE kind promises; every other array is taken as it is.

Archives are opened with ``allow_pickle=False``: an uploaded file is untrusted, and unpickling it
would run its code. Object arrays are therefore refused, not read.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np

from tinymlaas.data.types import DatasetSpec, ImportedData, LabelledSample, SampleKind, Task
from tinymlaas.errors import InvalidInput

__all__ = ["import_npz"]

_KINDS_BY_RANK = {
    1: (SampleKind.VECTOR,),
    2: (SampleKind.TIMESERIES, SampleKind.AUDIO),
    3: (SampleKind.IMAGE,),
}
_ZIP_SIGNATURES = (b"PK\x03\x04", b"PK\x05\x06")
_NPY_SIGNATURE = b"\x93NUMPY"
_CORRUPT = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)


def import_npz(path: Path, *, spec: DatasetSpec | None = None, task: Task | None = None) -> ImportedData:
    """Read the samples of ``path``; without ``spec`` the spec is inferred from the arrays.

    With neither ``spec`` nor ``task``, float ``y`` means regression and anything else
    classification.
    """
    name = path.name
    if spec is not None and task is not None and task is not spec.task:
        raise InvalidInput(f"{name}: importing as {task} into a {spec.task} dataset")
    arrays = _load(path, name)
    x, y, labels = arrays["x"], arrays["y"], arrays.get("labels")
    _check_arrays(name, x, y)
    kind = _kind(name, x, spec)
    if spec is not None:
        task = spec.task
    elif task is None:
        task = Task.REGRESSION if y.dtype.kind == "f" else Task.CLASSIFICATION

    pixels = x.astype(np.float32)
    if kind is SampleKind.IMAGE and x.dtype == np.uint8:
        pixels /= 255.0
    pixels.setflags(write=False)  # samples are views into it and must stay frozen
    count = len(x)
    targets: list[float | None] = [None] * count
    names: list[str | None] = [None] * count
    class_names: tuple[str, ...] = ()
    if task is Task.REGRESSION:
        if labels is not None:
            raise InvalidInput(f"{name}: a 'labels' array, but the task is regression")
        targets = list(_targets(name, y))
    else:
        sample_names, class_names = _class_names(name, y, labels)
        names = list(sample_names)
    samples = tuple(
        LabelledSample(x=pixels[i], source=f"{name}#{i}", label=names[i], target=targets[i])
        for i in range(count)
    )

    if spec is None:
        spec = DatasetSpec(task=task, kind=kind, input_shape=tuple(x.shape[1:]), labels=class_names)
    return ImportedData(spec=spec, samples=samples)


def _load(path: Path, name: str) -> dict[str, np.ndarray]:
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as exc:
        raise InvalidInput(f"{name}: cannot be read ({exc.strerror or exc})") from exc
    if head.startswith(_NPY_SIGNATURE):
        raise InvalidInput(f"{name}: a single .npy array, not an .npz archive holding 'x' and 'y'")
    if not head.startswith(_ZIP_SIGNATURES):
        raise InvalidInput(f"{name}: not an .npz archive (no zip signature)")
    try:
        archive = np.load(path, allow_pickle=False)
    except _CORRUPT as exc:
        raise InvalidInput(f"{name}: corrupt .npz archive ({exc})") from exc
    arrays: dict[str, np.ndarray] = {}
    with archive:
        missing = [key for key in ("x", "y") if key not in archive.files]
        if missing:
            raise InvalidInput(
                f"{name}: missing array {' and '.join(map(repr, missing))}; the archive holds "
                f"{sorted(archive.files)}, expected 'x' (samples, ...) and 'y' (samples,)"
            )
        for key in ("x", "y", "labels"):
            if key not in archive.files:
                continue
            try:
                arrays[key] = archive[key]
            except ValueError as exc:
                if "allow_pickle" in str(exc):
                    raise InvalidInput(
                        f"{name}: array {key!r} holds Python objects, which are never unpickled; "
                        "store numbers or strings"
                    ) from exc
                raise InvalidInput(f"{name}: array {key!r} is corrupt ({exc})") from exc
            except _CORRUPT as exc:
                raise InvalidInput(f"{name}: array {key!r} is corrupt ({exc})") from exc
    return arrays


def _check_arrays(name: str, x: np.ndarray, y: np.ndarray) -> None:
    if x.dtype.kind not in "biuf":
        raise InvalidInput(f"{name}: x has dtype {x.dtype}; samples must be numbers")
    if x.ndim - 1 not in _KINDS_BY_RANK:
        raise InvalidInput(
            f"{name}: x has shape {x.shape}; expected (samples, features), (samples, steps, channels) "
            "or (samples, height, width, channels)"
        )
    if y.ndim != 1:
        raise InvalidInput(f"{name}: y has shape {y.shape}; expected one value per sample, (samples,)")
    if len(x) != len(y):
        raise InvalidInput(f"{name}: x holds {len(x)} samples but y holds {len(y)}")
    if len(x) == 0:
        raise InvalidInput(f"{name}: the archive holds no samples")


def _kind(name: str, x: np.ndarray, spec: DatasetSpec | None) -> SampleKind:
    shape = tuple(x.shape[1:])
    kinds = _KINDS_BY_RANK[len(shape)]
    if spec is None:
        return kinds[0]
    if spec.kind not in kinds:
        raise InvalidInput(f"{name}: samples of shape {shape} cannot be {spec.kind} samples")
    if shape != spec.input_shape:
        raise InvalidInput(
            f"{name}: samples have shape {shape}; the dataset's input shape is {spec.input_shape}"
        )
    return spec.kind


def _targets(name: str, y: np.ndarray) -> list[float]:
    if y.dtype.kind not in "iuf":
        raise InvalidInput(f"{name}: y has dtype {y.dtype}; regression targets must be numbers")
    values = y.astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise InvalidInput(f"{name}: y[{bad[0]}] = {values[bad[0]]} is not a finite number")
    return values.tolist()


def _class_names(name: str, y: np.ndarray, labels: np.ndarray | None) -> tuple[list[str], tuple[str, ...]]:
    """Each sample's class name, and the dataset's class names in index order."""
    known = _label_names(name, labels) if labels is not None else None
    if y.dtype.kind in "iu":
        if known is None:
            values = sorted(set(y.tolist()))
            return [str(v) for v in y.tolist()], tuple(str(v) for v in values)
        out_of_range = np.flatnonzero((y < 0) | (y >= len(known)))
        if out_of_range.size:
            i = out_of_range[0]
            raise InvalidInput(
                f"{name}: y[{i}] = {y[i]} is not a class index; 'labels' names {len(known)} classes "
                f"(indices 0..{len(known) - 1})"
            )
        return [known[i] for i in y.tolist()], known
    if y.dtype.kind in "US":
        names = _strings(name, "y", y)
        empty = [i for i, n in enumerate(names) if not n]
        if empty:
            raise InvalidInput(f"{name}: y[{empty[0]}] is an empty class name")
        if known is None:
            return names, tuple(sorted(set(names)))
        unknown = [i for i, n in enumerate(names) if n not in known]
        if unknown:
            i = unknown[0]
            raise InvalidInput(f"{name}: y[{i}] = {names[i]!r} is not one of 'labels' {list(known)}")
        return names, known
    raise InvalidInput(
        f"{name}: y has dtype {y.dtype}; classification needs class indices (integers) or class names "
        "(strings); float y are regression targets"
    )


def _label_names(name: str, labels: np.ndarray) -> tuple[str, ...]:
    if labels.ndim != 1 or labels.dtype.kind not in "US":
        raise InvalidInput(
            f"{name}: 'labels' has shape {labels.shape} and dtype {labels.dtype}; expected class names "
            "(a 1-D string array)"
        )
    names = _strings(name, "labels", labels)
    if len(set(names)) != len(names) or not all(names):
        raise InvalidInput(f"{name}: 'labels' must hold distinct, non-empty class names, got {names}")
    return tuple(names)


def _strings(name: str, key: str, array: np.ndarray) -> list[str]:
    if array.dtype.kind == "U":
        return [str(v).strip() for v in array.tolist()]
    try:
        return [v.decode("utf-8").strip() for v in array.tolist()]
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{name}: {key!r} holds bytes that are not UTF-8 text") from exc
