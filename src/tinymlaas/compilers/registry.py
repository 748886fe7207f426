"""Compiler plugins found through the ``tinymlaas.compilers`` entry-point group.

Built-in and third-party plugins are found the same way, so a vendor package adds a compiler by
declaring an entry point; nothing here names a plugin. Loading imports every plugin, which is
costly (some pull in TensorFlow), so the result is cached until ``refresh_compilers`` is called.
"""

from __future__ import annotations

import functools
import inspect
from importlib import metadata

from tinymlaas.catalog.board import Board
from tinymlaas.compilers.base import Compiler
from tinymlaas.errors import InvalidInput, NotFound, TinymlaasError

__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginLoadError",
    "available_compilers",
    "compiler_for",
    "get_compiler",
    "refresh_compilers",
]

ENTRY_POINT_GROUP = "tinymlaas.compilers"


class PluginLoadError(TinymlaasError):
    """An installed compiler plugin cannot be used: its import fails or it is not a Compiler."""

    http_status = 500
    coap_code = "5.00"
    title = "Compiler plugin failed to load"


def _describe(entry_point: metadata.EntryPoint) -> str:
    return f"compiler plugin {entry_point.name!r} (entry point {entry_point.name} = {entry_point.value})"


def _load(entry_point: metadata.EntryPoint) -> type[Compiler]:
    try:
        loaded = entry_point.load()
    except Exception as exc:
        raise PluginLoadError(
            f"{_describe(entry_point)} failed to load: {type(exc).__name__}: {exc}"
        ) from exc
    if not (isinstance(loaded, type) and issubclass(loaded, Compiler)):
        raise PluginLoadError(
            f"{_describe(entry_point)} is {loaded!r}, not a subclass of tinymlaas.compilers.Compiler"
        )
    if inspect.isabstract(loaded):
        raise PluginLoadError(f"{_describe(entry_point)} is abstract: it does not implement compile_files")
    for attribute in ("name", "runtime"):
        if not isinstance(getattr(loaded, attribute, None), str) or not getattr(loaded, attribute):
            raise PluginLoadError(f"{_describe(entry_point)} does not set the class attribute {attribute!r}")
    if loaded.name != entry_point.name:
        raise PluginLoadError(
            f"{_describe(entry_point)} names itself {loaded.name!r}; the entry point and the class "
            "must use the same name"
        )
    return loaded


@functools.cache
def _discover() -> tuple[tuple[str, type[Compiler]], ...]:
    found: dict[str, type[Compiler]] = {}
    for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
        plugin = _load(entry_point)
        if found.get(plugin.name, plugin) is not plugin:
            raise PluginLoadError(
                f"Two compiler plugins are named {plugin.name!r}: "
                f"{found[plugin.name].__module__}.{found[plugin.name].__qualname__} and "
                f"{plugin.__module__}.{plugin.__qualname__}"
            )
        found[plugin.name] = plugin
    return tuple(sorted(found.items()))


def available_compilers() -> dict[str, type[Compiler]]:
    """Installed compiler classes by name; PluginLoadError names the first plugin that is broken."""
    return dict(_discover())


def refresh_compilers() -> None:
    """Forget the cached plugin list, so plugins installed since the last look are found."""
    _discover.cache_clear()


def get_compiler(name: str) -> Compiler:
    """A fresh instance of the compiler plugin called ``name``."""
    compilers = available_compilers()
    if name not in compilers:
        raise NotFound(f"No compiler plugin named {name!r}; installed: {', '.join(compilers) or 'none'}")
    return compilers[name]()


def compiler_for(board: Board, runtime: str | None = None) -> Compiler:
    """The compiler for ``board``: for ``runtime`` if given, else for the board's most preferred runtime.

    When several plugins target one runtime, the one named after the runtime (the reference
    implementation) wins, then the first by name, so the choice never depends on install order.
    """
    if runtime is not None and runtime not in board.runtimes:
        raise InvalidInput(
            f"Board {board.id} does not support runtime {runtime!r}; "
            f"it supports: {', '.join(board.runtimes) or 'none'}"
        )
    compilers = available_compilers()
    for wanted in (runtime,) if runtime is not None else board.runtimes:
        candidates = sorted(
            (name != wanted, name) for name, plugin in compilers.items() if plugin.runtime == wanted
        )
        if candidates:
            return compilers[candidates[0][1]]()
    targeted = sorted({plugin.runtime for plugin in compilers.values()})
    wanted_text = repr(runtime) if runtime is not None else f"any of {', '.join(board.runtimes) or 'none'}"
    raise NotFound(
        f"No installed compiler plugin targets runtime {wanted_text} for board {board.id}; "
        f"installed plugins target: {', '.join(targeted) or 'none'}"
    )
