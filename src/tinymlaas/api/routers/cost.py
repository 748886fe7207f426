"""Cloud inference against TinyML on the device: ``cost:read``, since it changes nothing but is not public."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tinymlaas.api.deps import ContextDep, require
from tinymlaas.api.schemas.cost import CostCreate, CostDefaultsPublic, CostEstimatePublic
from tinymlaas.services.auth import Permission
from tinymlaas.services.costing import cost_defaults, estimate_cost

router = APIRouter(prefix="/cost", tags=["cost"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.COST_READ))]


@router.get("/defaults", response_model=CostDefaultsPublic)
def show_cost_defaults(context: ContextDep, _token: Reader) -> CostDefaultsPublic:
    """Every parameter's default with its unit and where it comes from, and each catalog board's
    list price and active power where one is on file.

    A default marked ``assumption`` is not a quoted figure: replace it with your own.
    """
    return CostDefaultsPublic(**cost_defaults(context))


@router.post("/estimate", response_model=CostEstimatePublic)
def estimate_costs(context: ContextDep, _token: Reader, body: CostCreate) -> CostEstimatePublic:
    """Cumulative cost month by month for both options, the break-even month, and the total at the
    horizon over a range of fleet sizes. Parameters left out take their defaults.
    """
    given = body.model_dump(exclude_none=True, exclude={"board", "inference_latency_ms"})
    return CostEstimatePublic(
        **estimate_cost(
            context,
            given,
            board=body.board,
            inference_latency_ms=body.inference_latency_ms,
        )
    )
