"""Pipelines (the operator's page for models chained across nodes): each declared pipeline, and one
pipeline drawn as a graph of its stages with what every stage's nodes reported.

Not the lifecycle page at ``/pipeline``: these are the multi-node pipelines of ``services.pipelines``.
Every count on the page is a node's own counter, read back over LwM2M by the server's pipeline runner
and joined per stage by the service, so the page states which nodes reported and when, and repeats
each node's own sentence on how it timed its latencies. While a pipeline is applying or running the
detail page re-fetches its live part, as the campaign pages do, so the counts move without a reload.
Apply and Stop call the services the CLI and the REST API call and need ``deployments:write``; a
refusal (the compatibility gate's reasons, a state that cannot change so) is shown on the page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tinymlaas.deploy.pipelines import PIPELINE_TRANSITIONS, PipelineState
from tinymlaas.errors import TinymlaasError
from tinymlaas.services import pipelines as service
from tinymlaas.services.auth import Permission
from tinymlaas.services.context import Context
from tinymlaas.web.deps import ContextDep, needs, render
from tinymlaas.web.sessions import DashboardSession

__all__ = ["pipeline_graph", "pipeline_row", "router", "stage_figures"]

router = APIRouter(include_in_schema=False)

Reader = Annotated[DashboardSession, Depends(needs(Permission.DEPLOYMENTS_READ))]
Operator = Annotated[DashboardSession, Depends(needs(Permission.DEPLOYMENTS_WRITE))]

# The runner reads counters only while a pipeline is being applied or runs; otherwise nothing moves.
_LIVE = frozenset({PipelineState.APPLYING, PipelineState.RUNNING})

# The graph's geometry in SVG user units: stage boxes left to right, an arrow between each two.
_BOX_W = 240
_GAP = 170
_PAD = 12
_LINE = 18
_HEADER_LINES = 3  # stage name, what it runs, how many nodes reported
_NAME_CHARS = 28  # a node or model name longer than this is shortened in its box (full in its tooltip)


def _short(text: str, chars: int = _NAME_CHARS) -> str:
    return text if len(text) <= chars else text[: chars - 1] + "…"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.2f} ms"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f} %" if whole else "—"


def _runs(stage: dict[str, Any]) -> str:
    """What a stage runs, as its declaration says it."""
    if stage.get("split"):
        return f"split {stage['split']} ({stage['part']})"
    return f"model {stage['model']}"


def _condition(condition: str) -> str:
    """A cascade's condition as the edge to the next stage reads it."""
    kind, _, value = condition.partition(":")
    if not condition:
        return "every output"
    if kind == "not":
        return f"outputs not {value}"
    if kind == "label":
        return f"only outputs {value}"
    return "outputs scoring " + condition.removeprefix("score").replace(">=", "≥ ")


def _node_state(node: str, stage: dict[str, Any], nodes: dict[str, Any]) -> str:
    """``online``, ``offline`` (the service's verdict), or ``not read`` before the runner read it."""
    if node not in nodes:
        return "not read"
    return "offline" if node in stage["offline"] else "online"


def stage_figures(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Per stage, its declaration beside the counts the service joined from its nodes, put for people.

    The cascade's saving is what a stage's condition kept back: of the outputs it judged (passed plus
    filtered), the share filtered never crossed the hop to the next stage."""
    declared = {s["name"]: s for s in view["spec"]["stages"]}
    last = len(view["stages"]) - 1
    stages = []
    for index, stage in enumerate(view["stages"]):
        spec = declared[stage["name"]]
        judged = stage["passed"] + stage["filtered"]
        nodes = [
            {
                "name": node,
                "state": _node_state(node, stage, view["nodes"]),
                "result": stage["last_results"].get(node, ""),
                "read_at": view["nodes"].get(node, {}).get("read_at"),
                "error": view["nodes"].get(node, {}).get("error"),
            }
            for node in stage["nodes"]
        ]
        stages.append(
            {
                **stage,
                "index": index,
                "last": index == last,
                "runs": _runs(spec),
                "condition": spec["condition"],
                "condition_text": _condition(spec["condition"]),
                "fanout": spec["fanout"],
                "link": spec["link"],
                "node_states": nodes,
                "judged": judged,
                "filtered_share": _share(stage["filtered"], judged),
                "messages_per_s_text": f"{stage['messages_per_s']:,.2f}",
                "hop_latency": _ms(stage["hop_latency_ms"]),
                "compute": _ms(stage["compute_ms"]),
                "end_to_end": _ms(stage["end_to_end_ms"]),
                "correct_share": _share(stage["correct"], stage["labelled"]),
                "campaigns": view["campaigns"].get(stage["name"], []),
            }
        )
    return stages


def _line_y(top: int, line: int) -> int:
    """The baseline of a box's ``line``-th line of text (from 1)."""
    return top + _PAD + line * _LINE - 4


def pipeline_graph(stages: list[dict[str, Any]]) -> dict[str, Any]:
    """The stages as boxes left to right, each listing its nodes, and an arrow to the next stage
    carrying the condition on what crosses it; coordinates for an SVG the template draws."""
    tallest = max((len(s["nodes"]) for s in stages), default=0)
    box_h = (_HEADER_LINES + tallest) * _LINE + 2 * _PAD
    boxes, edges = [], []
    for s in stages:
        x = _PAD + s["index"] * (_BOX_W + _GAP)
        boxes.append(
            {
                "stage": s["name"],
                "x": x,
                "y": _PAD,
                "w": _BOX_W,
                "h": box_h,
                "text_x": x + _PAD,
                "name": {"text": _short(s["name"]), "y": _line_y(_PAD, 1)},
                "runs": {"text": _short(s["runs"], 34), "full": s["runs"], "y": _line_y(_PAD, 2)},
                "reported": {
                    "text": f"{s['reported']} of {len(s['nodes'])} nodes reported",
                    "y": _line_y(_PAD, 3),
                },
                "nodes": [
                    {**n, "label": _short(n["name"]), "y": _line_y(_PAD, _HEADER_LINES + 1 + i)}
                    for i, n in enumerate(s["node_states"])
                ],
            }
        )
        if not s["last"]:
            start, mid = x + _BOX_W, _PAD + box_h // 2
            # Fanout matters only when the next stage has several nodes to spread messages over.
            spread = len(stages[s["index"] + 1]["nodes"]) > 1
            under = [f"{s['link']} link" if s["link"] else "", f"fanout: {s['fanout']}" if spread else ""]
            edges.append(
                {
                    "x1": start,
                    "x2": start + _GAP - 4,
                    "y": mid,
                    "centre": start + _GAP // 2,
                    "label": _short(s["condition_text"], 24),
                    "label_full": s["condition_text"],
                    "under": [
                        {"text": text, "y": mid + (i + 1) * _LINE}
                        for i, text in enumerate(t for t in under if t)
                    ],
                }
            )
    width = 2 * _PAD + len(stages) * _BOX_W + max(len(stages) - 1, 0) * _GAP
    return {"width": width, "height": box_h + 2 * _PAD, "boxes": boxes, "edges": edges}


def pipeline_row(view: dict[str, Any]) -> dict[str, Any]:
    """One pipeline on the list: its stages in order and what its last stage has concluded."""
    last = view["stages"][-1]
    return {
        "id": view["id"],
        "name": view["name"],
        "state": view["state"],
        "error": view["error"],
        "stages": [s["name"] for s in view["stages"]],
        "results": last["messages_in"],
        "correct": last["correct"],
        "labelled": last["labelled"],
        "correct_share": _share(last["correct"], last["labelled"]),
        "end_to_end": _ms(last["end_to_end_ms"]),
        "last_stage": last["name"],
        "updated_at": view["updated_at"],
    }


def _read_at(view: dict[str, Any]) -> str | None:
    """When the runner last read a node of this pipeline."""
    times = [n["read_at"] for n in view["nodes"].values() if n.get("read_at")]
    return max(times) if times else None


def _detail(
    request: Request,
    context: Context,
    session: DashboardSession,
    ref: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    view = service.show_pipeline(context, ref)
    state = PipelineState(view["state"])
    stages = stage_figures(view)
    return render(
        request,
        "node_pipeline.html",
        session,
        status,
        pipeline=view,
        stages=stages,
        graph=pipeline_graph(stages),
        read_at=_read_at(view),
        can_apply=PipelineState.APPLYING in PIPELINE_TRANSITIONS[state],
        can_stop=PipelineState.STOPPED in PIPELINE_TRANSITIONS[state],
        live=state in _LIVE,
        error=error,
    )


@router.get("/pipelines", response_class=HTMLResponse)
def pipelines_page(request: Request, context: ContextDep, session: Reader) -> HTMLResponse:
    """Every declared pipeline, newest first, with its state and its last stage's results."""
    rows = [pipeline_row(view) for view in service.list_pipelines(context)]
    return render(request, "node_pipelines.html", session, rows=rows)


@router.get("/pipelines/{ref}", response_class=HTMLResponse)
def pipeline_detail(request: Request, context: ContextDep, session: Reader, ref: str) -> HTMLResponse:
    """One pipeline as a graph of its stages, with each stage's and hop's counts."""
    return _detail(request, context, session, ref)


@router.post("/pipelines/{ref}/apply", response_model=None)
def apply_form(request: Request, context: ContextDep, session: Operator, ref: str) -> Response:
    """Gate every node and start the stage campaigns; a refusal is shown with every reason."""
    try:
        view = service.apply_pipeline(context, ref)
    except TinymlaasError as exc:
        return _detail(request, context, session, ref, error=exc.detail, status=exc.http_status)
    return RedirectResponse(f"/pipelines/{view['id']}", status_code=303)


@router.post("/pipelines/{ref}/stop", response_model=None)
def stop_form(request: Request, context: ContextDep, session: Operator, ref: str) -> Response:
    """Mark the pipeline stopped; the runner then clears its nodes' stage configuration."""
    try:
        view = service.stop_pipeline(context, ref)
    except TinymlaasError as exc:
        return _detail(request, context, session, ref, error=exc.detail, status=exc.http_status)
    return RedirectResponse(f"/pipelines/{view['id']}", status_code=303)
