"""Bodies of the cost comparison: every parameter optional, defaulting to the documented figure.

``CostCreate`` is built from the model's own parameters and their ``SOURCES``, so the API can never
offer a parameter the model lacks or describe a default differently from the dashboard.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from tinymlaas.services.cost import SOURCES, CostInputs

__all__ = ["CostBoardPublic", "CostCreate", "CostDefaultsPublic", "CostEstimatePublic", "CostParameterPublic"]

# Bounds checked before the model runs, so a 422 names every bad field at once.
_BOUNDS: dict[str, dict[str, int]] = {
    "devices": {"ge": 1, "le": 100_000_000},
    "horizon_months": {"ge": 1, "le": 240},
    "message_bytes": {"ge": 1},
}


def _parameter(name: str, default: Any) -> tuple[Any, Any]:
    source = SOURCES[name]
    kind = int if isinstance(default, int) else float
    description = f"{source.label}, in {source.unit}. Default {default:g}: {source.source}."
    return kind | None, Field(None, description=description, **_BOUNDS.get(name, {"ge": 0}))


_DEFAULTS = CostInputs()

CostCreate = create_model(
    "CostCreate",
    __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
    __doc__="The comparison's parameters; any left out take the default GET /cost/defaults lists.",
    board=(
        str | None,
        Field(
            None,
            examples=["pico"],
            description="A catalog board: its list price becomes the TinyML device cost, and its "
            "active power turns inference_latency_ms into energy per inference.",
        ),
    ),
    inference_latency_ms=(
        float | None,
        Field(None, ge=0, description="A measured latency on the board, in ms (needs board)."),
    ),
    **{f.name: _parameter(f.name, getattr(_DEFAULTS, f.name)) for f in fields(CostInputs)},
)


class CostParameterPublic(BaseModel):
    name: str
    value: int | float
    label: str
    unit: str
    source: str
    url: str | None
    assumption: bool = Field(description="True where the default is an assumption, not a quoted figure.")


class CostBoardPublic(BaseModel):
    board: str
    name: str
    unit_price_usd: float | None
    price_source: str
    active_power_w: float | None
    power_source: str


class CostDefaultsPublic(BaseModel):
    parameters: list[CostParameterPublic]
    boards: list[CostBoardPublic]


class CostEstimatePublic(BaseModel):
    inputs: dict[str, int | float] = Field(description="The parameters the estimate used.")
    sources: dict[str, str] = Field(description="Per parameter: where its value came from.")
    cloud_per_device_month: dict[str, float] = Field(description="USD per device per month, by component.")
    tinyml_per_device_month: dict[str, float] = Field(description="USD per device per month, by component.")
    cloud_upfront_usd: float
    tinyml_upfront_usd: float
    cloud_monthly_usd: float = Field(description="The whole fleet's running cost per month.")
    tinyml_monthly_usd: float = Field(description="The whole fleet's running cost per month.")
    months: list[int]
    cloud_cumulative_usd: list[float] = Field(
        description="After each month in ``months``; month 0 is up front only."
    )
    tinyml_cumulative_usd: list[float]
    break_even_month: float | None = Field(
        description="From this month on TinyML costs at most as much as the cloud option; null if never."
    )
    verdict: str = Field(description="The comparison in one sentence.")
    fleet_sizes: list[int]
    cloud_total_by_fleet_usd: list[float] = Field(description="Cumulative at the horizon, per fleet size.")
    tinyml_total_by_fleet_usd: list[float]
