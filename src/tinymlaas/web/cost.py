"""Cost (the CFO's page): cloud inference against TinyML on the device, every figure with its source.

A GET form, so a result is a URL that can be shared; every submission recomputes. Figures the store
holds (a device's measured latency, a module's input size) can stand in for assumed defaults.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from tinymlaas.errors import InvalidInput
from tinymlaas.services.auth import Permission
from tinymlaas.services.costing import cost_defaults, estimate_cost, measured_figures
from tinymlaas.web.cost_view import (
    cumulative_chart,
    fleet_chart,
    form_value,
    measured_baselines,
    money,
    read_form,
)
from tinymlaas.web.deps import ContextDep, needs, render
from tinymlaas.web.sessions import DashboardSession

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

CostReader = Annotated[DashboardSession, Depends(needs(Permission.COST_READ))]


def _rows(
    parameters: list[dict[str, Any]], result: dict[str, Any] | None, typed: dict[str, str]
) -> list[dict[str, Any]]:
    """One form row per parameter: the value to show and the source of that value."""
    rows = []
    for parameter in parameters:
        name = parameter["name"]
        if result is not None:
            value, source = form_value(result["inputs"][name]), result["sources"][name]
        else:
            value, source = typed.get(name, form_value(parameter["value"])), parameter["source"]
        is_default = source == parameter["source"]
        rows.append(
            {
                **parameter,
                "shown": value,
                "shown_source": "entered on this page" if source == "entered" else source,
                "link": parameter["url"] if is_default else None,
                "assumed": parameter["assumption"] and is_default,
                "whole": isinstance(parameter["value"], int),
            }
        )
    return rows


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    components = [("cloud", name, cost) for name, cost in result["cloud_per_device_month"].items()] + [
        ("TinyML", name, cost) for name, cost in result["tinyml_per_device_month"].items()
    ]
    return {
        "verdict": result["verdict"],
        "break_even": result["break_even_month"],
        "cloud_total": money(result["cloud_cumulative_usd"][-1]),
        "tinyml_total": money(result["tinyml_cumulative_usd"][-1]),
        "cloud_upfront": money(result["cloud_upfront_usd"]),
        "tinyml_upfront": money(result["tinyml_upfront_usd"]),
        "cloud_monthly": money(result["cloud_monthly_usd"]),
        "tinyml_monthly": money(result["tinyml_monthly_usd"]),
        "components": [
            {"option": option, "name": name.replace("_", " "), "cost": money(cost)}
            for option, name, cost in components
        ],
        "cumulative_chart": cumulative_chart(result),
        "fleet_chart": fleet_chart(result),
    }


@router.get("/cost", response_class=HTMLResponse)
def cost_page(request: Request, context: ContextDep, session: CostReader) -> HTMLResponse:
    defaults = cost_defaults(context)
    measured = measured_figures(context)
    form = read_form(request.query_params, defaults["parameters"])
    baselines, errors = measured_baselines(form, measured)
    errors = form.errors + errors
    result = None
    if not errors:
        try:
            result = estimate_cost(context, form.given, board=form.board, baselines=baselines)
        except InvalidInput as exc:
            errors.append(exc.detail)
    return render(
        request,
        "cost.html",
        session,
        status=422 if errors else 200,
        form=form,
        errors=errors,
        rows=_rows(defaults["parameters"], result, form.typed),
        boards=defaults["boards"],
        measured=measured,
        summary=_summary(result) if result else None,
        horizon=result["inputs"]["horizon_months"] if result else None,
    )
