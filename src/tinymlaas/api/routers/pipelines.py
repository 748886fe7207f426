"""Multi-node pipelines: reading needs ``deployments:read``, declaring and applying ``deployments:write``.

Applying gates every node and starts the stage campaigns; the server's pipeline runner configures
the nodes when the campaigns complete and reads their counters, which ``GET`` reports per stage.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from tinymlaas.api.deps import ContextDep, require
from tinymlaas.deploy.pipelines import PipelineSpec
from tinymlaas.services import pipelines as service
from tinymlaas.services.auth import Permission

router = APIRouter(prefix="/pipelines", tags=["pipelines"])

Reader = Annotated[dict[str, Any], Depends(require(Permission.DEPLOYMENTS_READ))]
Writer = Annotated[dict[str, Any], Depends(require(Permission.DEPLOYMENTS_WRITE))]


@router.get("", response_model=list[dict[str, Any]])
def list_node_pipelines(context: ContextDep, _token: Reader) -> list[dict[str, Any]]:
    """Every pipeline, newest first, with per-stage counts as the nodes last reported them."""
    return service.list_pipelines(context)


@router.post("", response_model=dict[str, Any], status_code=201)
def create_node_pipeline(context: ContextDep, _token: Writer, body: PipelineSpec) -> dict[str, Any]:
    """Declare a pipeline (stored as a draft); 409 when the name is taken, 422 naming a bad field."""
    return service.create_pipeline(context, body.model_dump_json(), fmt="json")


@router.get("/{ref}", response_model=dict[str, Any])
def show_node_pipeline(context: ContextDep, _token: Reader, ref: str) -> dict[str, Any]:
    """One pipeline: state, campaigns, and per stage messages in/out, passed, filtered, outbox,
    messages/s, hop, compute and end-to-end latency, as read from the nodes over LwM2M."""
    return service.show_pipeline(context, ref)


@router.post("/{ref}/apply", response_model=dict[str, Any])
def apply_node_pipeline(context: ContextDep, _token: Writer, ref: str) -> dict[str, Any]:
    """Gate every node and start the stage campaigns; 422 with every reason the gate refuses."""
    return service.apply_pipeline(context, ref)


@router.post("/{ref}/stop", response_model=dict[str, Any])
def stop_node_pipeline(context: ContextDep, _token: Writer, ref: str) -> dict[str, Any]:
    """Stop: the runner clears the nodes' stage configuration."""
    return service.stop_pipeline(context, ref)
