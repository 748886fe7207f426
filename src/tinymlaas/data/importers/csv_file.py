"""Import a table where each row is one sample: a header row, one label column, numeric features.

The label column may sit anywhere; every other column is a feature, in file order, so the feature
order of a model trained on the file matches the order a person reads in it. Sources are
``<file name>:<line>`` so a bad sample can be found in the file later.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinymlaas.data.importers._text import is_number, parse_number, read_rows
from tinymlaas.data.types import DatasetSpec, ImportedData, LabelledSample, SampleKind, Task
from tinymlaas.errors import InvalidInput

__all__ = ["import_csv"]


def import_csv(
    path: Path,
    *,
    label_column: str = "label",
    task: Task | None = None,
    spec: DatasetSpec | None = None,
) -> ImportedData:
    """Read ``path`` as VECTOR samples labelled (or, for regression, targeted) by ``label_column``.

    The task comes from ``task``, else from ``spec``, else classification: a column of class names is
    the common case, and a numeric column read as class names still trains, while the reverse fails.
    """
    name = path.name
    task = _resolve_task(name, task, spec)
    if spec is not None and spec.kind is not SampleKind.VECTOR:
        raise InvalidInput(f"{name}: a CSV table yields vector samples, but the dataset holds {spec.kind}")
    if not path.is_file():
        raise InvalidInput(f"{name}: {'not a file' if path.exists() else 'no such file'}")

    rows = read_rows(path, name)
    if not rows:
        raise InvalidInput(f"{name}: the file is empty")
    header = [cell.strip() for cell in rows[0][1]]
    _check_header(name, header, label_column)
    if len(rows) == 1:
        raise InvalidInput(f"{name}: a header row but no data rows")

    label_at = header.index(label_column)
    features = [i for i in range(len(header)) if i != label_at]
    samples: list[LabelledSample] = []
    for line, cells in rows[1:]:
        where = f"{name}:{line}"
        if len(cells) != len(header):
            raise InvalidInput(f"{where}: expected {len(header)} columns, got {len(cells)}")
        x = np.array([parse_number(cells[i], where, repr(header[i])) for i in features], dtype=np.float32)
        if task is Task.REGRESSION:
            target = parse_number(cells[label_at], where, repr(label_column))
            samples.append(LabelledSample(x=x, source=where, target=target))
        else:
            label = cells[label_at].strip()
            if not label:
                raise InvalidInput(f"{where}: column {label_column!r} is empty; every row needs a label")
            samples.append(LabelledSample(x=x, source=where, label=label))

    if spec is None:
        labels = tuple(sorted({s.label for s in samples if s.label is not None}))
        spec = DatasetSpec(task=task, kind=SampleKind.VECTOR, input_shape=(len(features),), labels=labels)
    return ImportedData(spec=spec, samples=tuple(samples))


def _resolve_task(name: str, task: Task | None, spec: DatasetSpec | None) -> Task:
    if spec is None:
        return task or Task.CLASSIFICATION
    if task is not None and task is not spec.task:
        raise InvalidInput(f"{name}: importing as {task} into a {spec.task} dataset")
    return spec.task


def _check_header(name: str, header: list[str], label_column: str) -> None:
    seen: set[str] = set()
    for column in header:
        if column in seen:
            raise InvalidInput(f"{name}: column {column!r} appears twice in the header")
        seen.add(column)
    if label_column not in header:
        hint = "; the first row must be a header naming the columns" if all(map(is_number, header)) else ""
        raise InvalidInput(f"{name}: no column {label_column!r}; the columns are {header}{hint}")
    if len(header) == 1:
        raise InvalidInput(f"{name}: no feature columns besides {label_column!r}")
