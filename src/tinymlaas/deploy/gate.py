"""The compatibility gate: may this package be sent to this device at all?

It runs on the server against the capabilities the device reported (the TinyML Runtime object), so a
package that cannot load, cannot fit its tensor arena or cannot fit the model slot is never downloaded
over a slow link only to fail on the device. All reasons are collected, not just the first, so an
operator sees every gap at once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tinymlaas.errors import InvalidInput

__all__ = ["DeviceCapabilities", "GateVerdict", "check_compatibility", "module_storage"]


@dataclass(frozen=True)
class DeviceCapabilities:
    """What a device reports it can run; sizes are bytes."""

    runtime: str  # runtime id, as in a manifest's "runtime": "tflm", "litert", ...
    runtime_version: str
    ops: frozenset[str]  # op names as the runtime's resolver spells them, e.g. "CONV_2D"
    arena_bytes_available: int  # RAM free for the tensor arena
    slot_flash_bytes: int  # flash in one model slot (the inactive slot receives the package)
    accelerator: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ops", frozenset(self.ops))


@dataclass(frozen=True)
class GateVerdict:
    """``ok`` exactly when ``reasons`` is empty; each reason names the figures that failed."""

    ok: bool
    reasons: tuple[str, ...]


def module_storage(manifest: Mapping[str, Any], files: Mapping[str, bytes] | None = None) -> tuple[int, str]:
    """The flash a model slot needs for the module, and what that figure is.

    A module built for its core and measured there (``target`` in the manifest) takes its linked
    image; any other takes its files (``files`` as received, else the sizes the manifest lists).
    """
    target = manifest.get("target")
    if isinstance(target, Mapping) and isinstance(target.get("flash_bytes"), int):
        return int(target["flash_bytes"]), f"linked for {target.get('core', 'its core')}"
    if files is not None:
        return sum(len(data) for data in files.values()), "files"
    return sum(int(entry["size"]) for entry in manifest["files"].values()), "files"


def check_compatibility(manifest: Mapping[str, Any], caps: DeviceCapabilities) -> GateVerdict:
    """Every reason the device cannot take the module described by ``manifest``.

    ``arena_bytes`` of None (a runtime that allocates for itself, such as LiteRT) skips the arena
    check. A manifest without ``runtime``, ``ops`` or ``files`` raises ``InvalidInput``: it describes
    no module, which is a fault upstream rather than an incompatible device.
    """
    for key in ("runtime", "ops", "files"):
        if key not in manifest:
            raise InvalidInput(f"manifest has no {key!r}; cannot check compatibility")
    reasons: list[str] = []
    if manifest["runtime"] != caps.runtime:
        reasons.append(
            f"runtime mismatch: the module needs {manifest['runtime']!r}, "
            f"the device runs {caps.runtime!r} {caps.runtime_version}"
        )
    missing_ops = sorted(set(manifest["ops"]) - caps.ops)
    if missing_ops:
        reasons.append(f"the device lacks {len(missing_ops)} op(s) the model uses: {', '.join(missing_ops)}")
    target = manifest.get("target") if isinstance(manifest.get("target"), Mapping) else None
    if target is not None:
        # Built for the core and measured: the linked image and the RAM it used are what count.
        ram = int(target.get("static_ram_bytes", 0)) + int(target.get("stack_bytes", 0))
        if ram > caps.arena_bytes_available:
            short = ram - caps.arena_bytes_available
            reasons.append(
                f"the module needs {ram} bytes of RAM (static data and peak stack, measured) but the device "
                f"has {caps.arena_bytes_available} bytes available (short by {short} bytes)"
            )
    else:
        arena = manifest.get("arena_bytes")
        if arena is not None and arena > caps.arena_bytes_available:
            reasons.append(
                f"the tensor arena needs {arena} bytes but the device has {caps.arena_bytes_available} bytes "
                f"available (short by {arena - caps.arena_bytes_available} bytes)"
            )
    if target is not None:
        package_bytes, what = (
            int(target.get("flash_bytes", 0)),
            f"linked for {target.get('core', 'its core')}",
        )
    else:
        package_bytes, what = sum(entry["size"] for entry in manifest["files"].values()), "files"
    if package_bytes > caps.slot_flash_bytes:
        reasons.append(
            f"the module ({what}) takes {package_bytes} bytes but a model slot holds {caps.slot_flash_bytes} "
            f"bytes of flash (over by {package_bytes - caps.slot_flash_bytes} bytes)"
        )
    return GateVerdict(ok=not reasons, reasons=tuple(reasons))
