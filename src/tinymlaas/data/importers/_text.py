"""Reading delimited text the same way for every importer, so errors read alike.

Blank lines are skipped (editors and exporters leave them at the end); a UTF-8 byte-order mark is
accepted because spreadsheet programs write one.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import TypeAlias

from tinymlaas.errors import InvalidInput

__all__ = ["Row", "column_label", "is_number", "parse_number", "read_rows"]

# (1-based line number where the row ends, its cells)
Row: TypeAlias = tuple[int, list[str]]


def read_rows(path: Path, display: str) -> list[Row]:
    """Every non-blank row of a CSV file; ``display`` is the file name errors should show."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            return [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{display}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise InvalidInput(f"{display}: not a readable CSV file ({exc})") from exc
    except OSError as exc:
        raise InvalidInput(f"{display}: cannot be read ({exc.strerror or exc})") from exc


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def column_label(names: list[str] | None, index: int) -> str:
    """How errors name a column: by its header name when there is one, else by 1-based position."""
    return repr(names[index]) if names is not None else str(index + 1)


def parse_number(cell: str, where: str, column: str) -> float:
    """A finite float, or InvalidInput naming ``where`` (file:line), the ``column`` label and the cell."""
    try:
        value = float(cell)
    except ValueError:
        raise InvalidInput(f"{where}: column {column}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidInput(f"{where}: column {column}: {cell!r} is not a finite number")
    return value
