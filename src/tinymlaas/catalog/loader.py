"""Load the catalog: built-in board and runtime files, plus users' own directories of board files.

Every file is checked before anything is built from it. A wrong figure would silently pass or
reject deployments, so a bad file stops loading with ``InvalidInput`` naming the file and the
problem instead of being skipped.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from tinymlaas.catalog.board import Board, BoardClass, Footprint, RuntimeProfile
from tinymlaas.errors import InvalidInput, NotFound

__all__ = ["Catalog", "load_catalog"]

_T = TypeVar("_T")

_SLUG = re.compile(r"[a-z0-9][a-z0-9-]*")
# The figures that size a deployment; each one needs an entry in the file's [sources] table.
_FIGURES = ("clock_mhz", "flash_bytes", "ram_bytes", "usable_flash_bytes", "usable_ram_bytes")
_TRANSPORTS = frozenset({"usb-serial", "ble", "wifi", "ethernet", "lte-m", "nb-iot", "uart"})
_BOARD_KEYS = frozenset(
    {"id", "name", "class", "soc", "core", *_FIGURES}
    | {"runtimes", "accelerator", "transports", "sensors", "notes", "sources", "power"}
)
# Optional [power] figures in milliwatts, for the device-energy objective of the split planner.
_POWER_KEYS = frozenset({"cpu_active_mw", "radio_tx_mw", "radio_rx_mw"})
_RUNTIME_KEYS = frozenset({"name", "source", "ops", "footprint"})
_FOOTPRINT_KEYS = frozenset({"flash_bytes", "per_op_flash_bytes", "ram_bytes", "source"})
_TYPE_NAMES: dict[type, str] = {str: "a string", int: "an integer", list: "a list", dict: "a table"}


@dataclass(frozen=True)
class Catalog:
    """Every known board and runtime, by id."""

    boards: Mapping[str, Board]
    runtimes: Mapping[str, RuntimeProfile]

    def __post_init__(self) -> None:
        # Sorted, read-only views: listings come out in a stable order and a shared catalog
        # cannot be changed behind its readers' backs.
        object.__setattr__(self, "boards", MappingProxyType(dict(sorted(self.boards.items()))))
        object.__setattr__(self, "runtimes", MappingProxyType(dict(sorted(self.runtimes.items()))))

    def board(self, board_id: str) -> Board:
        """The board with this id; ``NotFound`` lists the known ids so a typo is easy to fix."""
        try:
            return self.boards[board_id]
        except KeyError:
            raise NotFound(_unknown("board", board_id, self.boards)) from None

    def runtime(self, runtime_id: str) -> RuntimeProfile:
        """The runtime with this id; ``NotFound`` lists the known ids."""
        try:
            return self.runtimes[runtime_id]
        except KeyError:
            raise NotFound(_unknown("runtime", runtime_id, self.runtimes)) from None


def load_catalog(extra_dirs: Iterable[Path] = ()) -> Catalog:
    """Load the built-in catalog, then each directory of ``*.toml`` board files in ``extra_dirs``.

    A board file whose id is already known replaces the earlier board, and later directories win
    over earlier ones: a site corrects a built-in figure (a bigger flash chip, a measured usable
    RAM) by dropping one file in its own directory, without touching the package.
    """
    package = resources.files("tinymlaas.catalog")
    runtimes = _load_runtimes(package / "runtimes.toml")
    boards: dict[str, Board] = {}
    for directory in [package / "boards", *(Path(d) for d in extra_dirs)]:
        for file in _board_files(directory):
            board = _parse_board(file, runtimes)
            boards[board.id] = board
    return Catalog(boards=boards, runtimes=runtimes)


def _board_files(directory: Traversable) -> list[Traversable]:
    if not directory.is_dir():
        raise InvalidInput(f"{directory}: not a directory of board files")
    return sorted((f for f in directory.iterdir() if f.name.endswith(".toml")), key=lambda f: f.name)


def _read_toml(file: Traversable) -> dict[str, Any]:
    try:
        with file.open("rb") as stream:
            return tomllib.load(stream)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidInput(f"{file}: cannot read it as TOML: {exc}") from exc


def _parse_board(file: Traversable, runtimes: Mapping[str, RuntimeProfile]) -> Board:
    where = str(file)
    data = _read_toml(file)
    _reject_unknown_keys(data, _BOARD_KEYS, where)

    board_id = _required(data, "id", str, where)
    _check_slug(board_id, "id", where)
    # One file per id, named after it, so the file that defines a board is never a mystery.
    if file.name != f"{board_id}.toml":
        raise InvalidInput(f"{where}: id {board_id!r} does not match the file name; use {board_id}.toml")

    class_name = _required(data, "class", str, where)
    try:
        board_class = BoardClass(class_name)
    except ValueError:
        expected = ", ".join(c.value for c in BoardClass)
        raise InvalidInput(f"{where}: unknown class {class_name!r}; expected one of: {expected}") from None

    figures = {key: _required(data, key, int, where) for key in _FIGURES}
    for key, value in figures.items():
        if value <= 0:
            raise InvalidInput(f"{where}: {key} must be positive, got {value}")
    for usable, total in (("usable_flash_bytes", "flash_bytes"), ("usable_ram_bytes", "ram_bytes")):
        if figures[usable] > figures[total]:
            raise InvalidInput(
                f"{where}: {usable} ({figures[usable]}) is larger than {total} ({figures[total]})"
            )

    board_runtimes = _string_list(data, "runtimes", where)
    if not board_runtimes:
        raise InvalidInput(f"{where}: runtimes is empty; name at least one runtime")
    unknown_runtimes = [r for r in board_runtimes if r not in runtimes]
    if unknown_runtimes:
        raise InvalidInput(
            f"{where}: unknown runtime(s) {', '.join(unknown_runtimes)}; known: {', '.join(sorted(runtimes))}"
        )

    transports = _string_list(data, "transports", where)
    unknown_transports = [t for t in transports if t not in _TRANSPORTS]
    if unknown_transports:
        raise InvalidInput(
            f"{where}: unknown transport(s) {', '.join(unknown_transports)}; "
            f"known: {', '.join(sorted(_TRANSPORTS))}"
        )

    return Board(
        id=board_id,
        name=_required(data, "name", str, where),
        board_class=board_class,
        soc=_required(data, "soc", str, where),
        core=_required(data, "core", str, where),
        clock_mhz=figures["clock_mhz"],
        flash_bytes=figures["flash_bytes"],
        ram_bytes=figures["ram_bytes"],
        usable_flash_bytes=figures["usable_flash_bytes"],
        usable_ram_bytes=figures["usable_ram_bytes"],
        runtimes=board_runtimes,
        accelerator=_optional(data, "accelerator", str, where),
        transports=transports,
        sensors=_string_list(data, "sensors", where),
        sources=_sources(data, where),
        notes=_optional(data, "notes", str, where) or "",
        power_mw=_power(data, where),
    )


def _power(data: Mapping[str, Any], where: str) -> dict[str, float]:
    """The optional [power] table: all three figures, positive, and a ``power`` source for them."""
    table = _optional(data, "power", dict, where)
    if table is None:
        return {}
    here = f"{where} [power]"
    _reject_unknown_keys(table, _POWER_KEYS, here)
    missing = sorted(_POWER_KEYS - set(table))
    if missing:
        raise InvalidInput(f"{here}: missing {', '.join(missing)}; give all three figures or none")
    figures: dict[str, float] = {}
    for key in sorted(_POWER_KEYS):
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise InvalidInput(f"{here}: {key} must be a positive number of milliwatts, got {value!r}")
        figures[key] = float(value)
    source = data.get("sources", {}).get("power", "")
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput(f"{where}: no source for the [power] figures; add sources.power")
    return figures


def _sources(data: Mapping[str, Any], where: str) -> dict[str, str]:
    """The [sources] table; every figure must say where it comes from, or it cannot be trusted."""
    table = _required(data, "sources", dict, where)
    _reject_unknown_keys(table, _BOARD_KEYS - {"sources"}, f"{where} [sources]")
    sources = {key: _typed(value, f"sources.{key}", str, where) for key, value in table.items()}
    missing = [key for key in _FIGURES if not sources.get(key, "").strip()]
    if missing:
        raise InvalidInput(
            f"{where}: no source for {', '.join(missing)}; give each figure a [sources] entry "
            "(datasheet, product page, measurement, or an estimate with its reasoning)"
        )
    return sources


def _load_runtimes(file: Traversable) -> dict[str, RuntimeProfile]:
    where = str(file)
    profiles: dict[str, RuntimeProfile] = {}
    for runtime_id, value in _read_toml(file).items():
        _check_slug(runtime_id, "runtime id", where)
        table = _typed(value, runtime_id, dict, where)
        here = f"{where} [{runtime_id}]"
        _reject_unknown_keys(table, _RUNTIME_KEYS, here)
        # No operator list means the runtime implements the full TFLite builtin set.
        ops = _string_list(table, "ops", here) if "ops" in table else None
        footprint_tables = _required(table, "footprint", dict, here)
        footprints = {
            core: _parse_footprint(footprint, f"{where} [{runtime_id}.footprint.{core}]")
            for core, footprint in footprint_tables.items()
        }
        if "default" not in footprints:
            raise InvalidInput(
                f"{here}: no [{runtime_id}.footprint.default]; cores without their own footprint use it"
            )
        profiles[runtime_id] = RuntimeProfile(
            id=runtime_id,
            name=_required(table, "name", str, here),
            supported_ops=None if ops is None else frozenset(ops),
            footprints=footprints,
            source=_required(table, "source", str, here),
        )
    return profiles


def _parse_footprint(value: Any, where: str) -> Footprint:
    table = _typed(value, "footprint", dict, where)
    _reject_unknown_keys(table, _FOOTPRINT_KEYS, where)
    flash_bytes = _required(table, "flash_bytes", int, where)
    per_op_flash_bytes = _required(table, "per_op_flash_bytes", int, where)
    ram_bytes = _required(table, "ram_bytes", int, where)
    source = _required(table, "source", str, where)
    if flash_bytes <= 0 or ram_bytes <= 0 or per_op_flash_bytes < 0:
        raise InvalidInput(f"{where}: flash_bytes and ram_bytes must be positive, per_op_flash_bytes >= 0")
    if not source.strip():
        raise InvalidInput(f"{where}: source is empty; say where the figures come from")
    return Footprint(
        flash_bytes=flash_bytes, per_op_flash_bytes=per_op_flash_bytes, ram_bytes=ram_bytes, source=source
    )


def _required(table: Mapping[str, Any], key: str, kind: type[_T], where: str) -> _T:
    if key not in table:
        raise InvalidInput(f"{where}: missing field {key!r}")
    return _typed(table[key], key, kind, where)


def _optional(table: Mapping[str, Any], key: str, kind: type[_T], where: str) -> _T | None:
    return _typed(table[key], key, kind, where) if key in table else None


def _typed(value: Any, key: str, kind: type[_T], where: str) -> _T:
    # bool is a subclass of int: `flash_bytes = true` must not pass as 1.
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidInput(
            f"{where}: field {key!r} must be {_TYPE_NAMES[kind]}, not {type(value).__name__} ({value!r})"
        )
    return value


def _string_list(table: Mapping[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _required(table, key, list, where)
    if not all(isinstance(item, str) for item in items):
        raise InvalidInput(f"{where}: field {key!r} must be a list of strings, got {items!r}")
    return tuple(items)


def _check_slug(value: str, what: str, where: str) -> None:
    if not _SLUG.fullmatch(value):
        raise InvalidInput(
            f"{where}: {what} {value!r} is not a valid slug "
            "(lower-case letters, digits and '-', not starting with '-')"
        )


def _reject_unknown_keys(table: Mapping[str, Any], allowed: frozenset[str], where: str) -> None:
    # A misspelt optional key (say "acclerator") would otherwise vanish without a word.
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise InvalidInput(f"{where}: unknown field(s) {', '.join(unknown)}")


def _unknown(kind: str, wanted: str, known: Mapping[str, object]) -> str:
    return f"unknown {kind} {wanted!r}; known {kind}s: {', '.join(known) or '(none)'}"
