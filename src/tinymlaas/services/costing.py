"""The cost comparison for the API and the dashboard: the pure model in ``cost`` plus what the store knows.

The store can replace two assumptions with figures of the product's own: a device's reported mean
inference latency (times its board's active power) gives the energy per inference, and a compiled
module's input tensor gives the bytes the cloud option would upload per inference. Each such figure
names the device or module it came from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import fields
from typing import Any

import numpy as np

from tinymlaas.errors import InvalidInput
from tinymlaas.services.context import Context
from tinymlaas.services.cost import SOURCES, CostInputs, board_figures, estimate, resolve
from tinymlaas.services.fleet import DeviceView, list_devices
from tinymlaas.storage.repositories import ModelRepository
from tinymlaas.storage.tables import ModelRow, ModuleRow, VariantRow

__all__ = ["cost_defaults", "estimate_cost", "measured_figures"]

_MAX_MODULES = 10  # newest modules offered as payload figures; older ones add little but reads


def cost_defaults(ctx: Context) -> dict[str, Any]:
    """Every parameter's default with its unit and source, and the figures on file per catalog board."""
    defaults = CostInputs()
    parameters = [
        {"name": f.name, "value": getattr(defaults, f.name), **vars(SOURCES[f.name])}
        for f in fields(CostInputs)
    ]
    boards = [{"name": board.name, **vars(board_figures(board.id))} for board in ctx.catalog.boards.values()]
    return {"parameters": parameters, "boards": sorted(boards, key=lambda b: b["board"])}


def estimate_cost(
    ctx: Context,
    given: Mapping[str, float | int],
    *,
    board: str | None = None,
    inference_latency_ms: float | None = None,
    baselines: Mapping[str, tuple[float, str]] | None = None,
) -> dict[str, Any]:
    """Both options' costs from ``given`` parameters, and where each parameter's value came from."""
    if board is not None and board not in ctx.catalog.boards:
        known = ", ".join(sorted(ctx.catalog.boards))
        raise InvalidInput(f"no board {board!r} in the catalog; the boards are {known}")
    resolved = resolve(given, board=board, inference_latency_ms=inference_latency_ms, baselines=baselines)
    return {**estimate(resolved.inputs).as_dict(), "sources": dict(resolved.provenance)}


def _device_energy(device: DeviceView) -> dict[str, Any] | None:
    latency = device.telemetry.get("mean_latency_ms")
    if isinstance(latency, bool) or not isinstance(latency, int | float) or not math.isfinite(latency):
        return None
    board = device.board or "unknown board"
    power = board_figures(board).active_power_w
    entry = {"key": f"device:{device.endpoint}", "device": device.endpoint, "board": board}
    if power is None:
        return {**entry, "value": None, "source": f"{board} has no active power figure on file"}
    source = (
        f"device {device.endpoint} ({board}): reported mean latency {latency:g} ms "
        f"x {board} active power {power:g} W"
    )
    return {**entry, "value": power * latency / 1000, "mean_latency_ms": latency, "source": source}


def _module_payload(model: ModelRow, variant: VariantRow, module: ModuleRow) -> dict[str, Any] | None:
    inputs = variant.info["inputs"]
    if not inputs:
        return None
    tensor = inputs[0]
    size = math.prod(tensor["shape"]) * np.dtype(tensor["dtype"]).itemsize
    source = (
        f"module {module.id} ({model.name} v{model.version}, {variant.quantization}, {module.board_id}): "
        f"input tensor {tensor['shape']} {tensor['dtype']} = {size} bytes"
    )
    return {"key": f"module:{module.id}", "module": module.id, "value": size, "source": source}


def _payloads(ctx: Context) -> list[dict[str, Any]]:
    """The input bytes of the newest module of each of the newest variants, read in one session."""
    with ctx.session() as session:
        lineage = [
            (model, variant, module)
            for model in ModelRepository(session).models_with_lineage()
            for variant in model.variants
            for module in variant.modules
        ]
        lineage.sort(key=lambda entry: entry[2].id)
        lineage.sort(key=lambda entry: entry[2].created_at, reverse=True)
        seen: set[str] = set()
        payload = []
        for model, variant, module in lineage:
            if variant.id in seen or len(seen) >= _MAX_MODULES:
                continue
            seen.add(variant.id)
            if entry := _module_payload(model, variant, module):
                payload.append(entry)
        return payload


def measured_figures(ctx: Context) -> dict[str, list[dict[str, Any]]]:
    """Energy per inference from devices that reported a latency; upload bytes from compiled modules.

    An entry whose ``value`` is None says why that device's report cannot be used.
    """
    energy = [e for d in list_devices(ctx) if (e := _device_energy(d))]
    return {"energy_per_inference_j": energy, "payload_bytes": _payloads(ctx)}
