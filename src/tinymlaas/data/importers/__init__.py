"""Turn files people already have into ``ImportedData``: one module per format, one entry point here."""

from __future__ import annotations

from pathlib import Path

from tinymlaas.data.importers.csv_file import import_csv
from tinymlaas.data.importers.folder import import_folder
from tinymlaas.data.importers.npz import import_npz
from tinymlaas.data.types import DatasetSpec, ImportedData, Task
from tinymlaas.errors import InvalidInput

__all__ = ["FILE_SUFFIXES", "FORMATS", "import_csv", "import_folder", "import_npz", "import_path"]

FORMATS = ("folder", "csv", "npz")
_FORMAT_BY_SUFFIX = {".csv": "csv", ".npz": "npz"}
# The single files ``import_path`` tells the format of by name; a folder has no suffix.
FILE_SUFFIXES = tuple(_FORMAT_BY_SUFFIX)


def import_path(
    path: Path,
    *,
    fmt: str | None = None,
    spec: DatasetSpec | None = None,
    task: Task | None = None,
    label_column: str = "label",
) -> ImportedData:
    """Import ``path`` in format ``fmt``, or in the format its type implies.

    A directory is a folder import, ``*.csv`` a table and ``*.npz`` an archive. ``label_column``
    applies to tables only; a folder import is always classification, since its labels are folder
    names.
    """
    fmt = fmt if fmt is not None else _infer_format(path)
    if fmt == "folder":
        if task is Task.REGRESSION:
            raise InvalidInput(
                f"{path.name}: a folder import labels samples by folder name; it cannot be regression"
            )
        return import_folder(path, spec=spec)
    if fmt == "csv":
        return import_csv(path, label_column=label_column, task=task, spec=spec)
    if fmt == "npz":
        return import_npz(path, spec=spec, task=task)
    raise InvalidInput(f"unknown import format {fmt!r}; the formats are {', '.join(FORMATS)}")


def _infer_format(path: Path) -> str:
    if path.is_dir():
        return "folder"
    if not path.exists():
        raise InvalidInput(f"{path.name or path}: no such file or folder")
    fmt = _FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise InvalidInput(
            f"{path.name}: cannot tell the format from the name; the formats are {', '.join(FORMATS)} "
            "(a folder, a .csv file, an .npz file)"
        )
    return fmt
