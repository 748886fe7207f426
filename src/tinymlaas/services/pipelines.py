"""Pipelines: declare a graph of stages on nodes, apply it through campaigns, and report its counts.

``apply`` decides everything it can in the store before anything reaches a device: each stage's
model resolves to its int8 variant (or a built split part), each node gets the module for its board
and the runtime it reported (compiled when none is stored), and the compatibility gate checks every
node; one refusal refuses the whole pipeline with every reason and nothing changes. Then one
campaign per (stage, module) installs the modules, and the server's pipeline runner
(``server.pipelines``) configures the nodes over LwM2M once the campaigns complete and reads their
counters back. The per-hop keys the runner writes are made here and kept in ``applied``; they never
leave the services layer except towards the devices.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from tinymlaas.deploy.campaigns import CampaignState, InstallationState
from tinymlaas.deploy.pipelines import PipelineSpec, PipelineState, StageSpec, parse_pipeline, transition
from tinymlaas.errors import Conflict, InvalidInput
from tinymlaas.services.campaigns import create_campaign, preview_campaign
from tinymlaas.services.compiling import compile_module
from tinymlaas.services.context import Context, new_id
from tinymlaas.storage.repositories import (
    CampaignRepository,
    DeviceRepository,
    ModelRepository,
    PipelineRepository,
    SplitPlanRepository,
)
from tinymlaas.storage.tables import PipelineRow

__all__ = [
    "apply_pipeline",
    "campaigns_outcome",
    "create_pipeline",
    "list_pipelines",
    "pipeline_snapshot",
    "pipeline_status",
    "pipelines_to_drive",
    "record_progress",
    "show_pipeline",
    "stop_pipeline",
]

HOP_KEY_BYTES = 16
# Campaign states after which a stage's modules will not all be installed.
_FAILED_CAMPAIGN = {CampaignState.HALTED.value, CampaignState.CANCELLED.value, "rolling_back", "rolled_back"}


def _row(session: Session, ref: str) -> PipelineRow:
    return PipelineRepository(session).get(ref)


def _public_applied(applied: dict[str, Any] | None) -> dict[str, Any] | None:
    """What may be shown of ``applied``: everything but the keys."""
    if applied is None:
        return None
    return {key: value for key, value in applied.items() if key != "keys"}


def _view(row: PipelineRow) -> dict[str, Any]:
    applied = _public_applied(row.applied) or {}
    return {
        "id": row.id,
        "name": row.name,
        "state": row.state,
        "error": row.error,
        "spec": row.spec,
        "campaigns": applied.get("campaigns", {}),
        "nodes": applied.get("nodes", {}),
        "stages": pipeline_status(row.spec, applied.get("nodes", {})),
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def pipeline_status(spec: dict[str, Any], nodes: dict[str, Any]) -> list[dict[str, Any]]:
    """Per stage, the nodes' counters joined: messages, pass/filter, hop and end-to-end latency.

    Counts add up over a stage's nodes; a latency is the mean of the nodes' means weighted by their
    messages. ``reported`` counts the nodes whose counters were read, so a missing node shows. Only
    the last stage has results, so only it has an end-to-end latency and correct results.
    """
    stages = []
    last = spec["stages"][-1]["name"] if spec["stages"] else None
    for stage in spec["stages"]:
        reports = [nodes[n] for n in stage["nodes"] if n in nodes and nodes[n].get("counters")]
        counters = [r["counters"] for r in reports]

        def total(key: str, counters: list[dict[str, Any]] = counters) -> int:
            return sum(int(c.get(key) or 0) for c in counters)

        def mean(key: str, weight: str, counters: list[dict[str, Any]] = counters) -> float | None:
            pairs = [(float(c[key]), int(c.get(weight) or 0)) for c in counters if c.get(key) is not None]
            weights = sum(w for _, w in pairs)
            return sum(v * w for v, w in pairs) / weights if weights else None

        stages.append(
            {
                "name": stage["name"],
                "nodes": stage["nodes"],
                "reported": len(reports),
                "offline": [n for n in stage["nodes"] if not nodes.get(n, {}).get("online", False)],
                "messages_in": total("messages_in"),
                "messages_out": total("messages_out"),
                "passed": total("passed"),
                "filtered": total("filtered"),
                "send_failures": total("send_failures"),
                "outbox": total("outbox"),
                "messages_per_s": sum(float(c.get("messages_per_s") or 0.0) for c in counters),
                "hop_latency_ms": mean("hop_latency_ms", "messages_out"),
                "compute_ms": mean("compute_ms", "passed"),
                "end_to_end_ms": mean("end_to_end_ms", "messages_in") if stage["name"] == last else None,
                "labelled": total("labelled"),
                "correct": total("correct"),
                "last_results": {
                    n: nodes[n]["counters"].get("last_result", "")
                    for n in stage["nodes"]
                    if n in nodes and nodes[n].get("counters")
                },
                "latency_basis": sorted({r.get("latency_basis", "") for r in reports} - {""}),
            }
        )
    return stages


def create_pipeline(ctx: Context, text: str | bytes, *, fmt: str) -> dict[str, Any]:
    """Store a declaration as a draft; a name already taken is a conflict."""
    spec = parse_pipeline(text, fmt=fmt)
    with ctx.session() as session:
        repo = PipelineRepository(session)
        if repo.find(spec.name) is not None:
            raise Conflict(f"a pipeline named {spec.name!r} exists; choose another name")
        row = repo.add(
            PipelineRow(
                id=new_id("pln"),
                name=spec.name,
                spec=spec.model_dump(mode="json"),
                state=PipelineState.DRAFT.value,
                applied=None,
                error=None,
            )
        )
        return _view(row)


def list_pipelines(ctx: Context) -> list[dict[str, Any]]:
    with ctx.session() as session:
        return [_view(row) for row in PipelineRepository(session).all()]


def show_pipeline(ctx: Context, ref: str) -> dict[str, Any]:
    with ctx.session() as session:
        return _view(_row(session, ref))


def _stage_variant(session: Session, stage: StageSpec) -> str:
    """The variant a stage runs: the model's int8 variant, or a built split part's."""
    repo = ModelRepository(session)
    if stage.split is not None:
        plan = SplitPlanRepository(session).get(stage.split)
        model_id = plan.head_model_id if stage.part == "head" else plan.tail_model_id
        if plan.build is None or model_id is None:
            raise InvalidInput(
                f"stage {stage.name!r}: split plan {stage.split} is not built; "
                f"run `tinymlaas splits build {stage.split}`"
            )
        model = repo.model(model_id)
    else:
        assert stage.model is not None
        model = repo.model(stage.model)
    variants = [v for v in model.variants if v.quantization == "int8"] or list(model.variants)
    if not variants:
        raise InvalidInput(f"stage {stage.name!r}: model {model.name} has no variant to deploy; squeeze it")
    return variants[-1].id


def _module_for(ctx: Context, variant_id: str, board: str, runtime: str) -> str:
    """A stored module of the variant that fits this board and runtime, else a new compile of it."""
    with ctx.session() as session:
        variant = ModelRepository(session).variant(variant_id)
        for module in reversed(variant.modules):
            if module.board_id == board and module.runtime == runtime and module.fits:
                return module.id
    module = compile_module(ctx, variant_id, board, runtime=runtime)
    if not module["fits"]:
        raise InvalidInput(
            f"the {runtime} module of variant {variant_id} does not fit {board}: "
            + "; ".join(module["reasons"])
        )
    return str(module["id"])


@dataclass(frozen=True)
class _Input:
    """What a stage's model takes: the input tensor's shape and the scaling applied before it."""

    shape: tuple[int, ...]
    scaling: dict[str, Any] | None


def _input_of(session: Session, variant_id: str) -> _Input:
    repo = ModelRepository(session)
    variant = repo.variant(variant_id)
    inputs = variant.info.get("inputs") or [{}]
    return _Input(tuple(inputs[0].get("shape") or ()), repo.model(variant.model_id).input_scaling)


def _cascade_mismatch(before: _Input, after: _Input) -> str | None:
    """Why the next model of a cascade cannot take the window the one before it looked at."""
    if before.shape != after.shape:
        return f"its model takes inputs of shape {list(after.shape)}, the window is {list(before.shape)}"
    if (before.scaling or {}) != (after.scaling or {}):
        return "its model scales its inputs differently (trained on other data): the window would be misread"
    return None


def _groups(ctx: Context, spec: PipelineSpec) -> dict[tuple[str, str], list[str]]:
    """(stage, module) -> its nodes: nodes of one stage with different boards get their own modules."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    problems = []
    previous: tuple[StageSpec, _Input] | None = None
    for stage in spec.stages:
        with ctx.session() as session:
            variant_id = _stage_variant(session, stage)
            window = _input_of(session, variant_id)
            if previous is not None and previous[0].part != "head":
                mismatch = _cascade_mismatch(previous[1], window)
                if mismatch:
                    problems.append(
                        f"stage {stage.name!r} looks at the window stage {previous[0].name!r} passes on, "
                        f"but {mismatch}"
                    )
            previous = (stage, window)
            devices = DeviceRepository(session)
            nodes = []
            for endpoint in stage.nodes:
                device = devices.find(endpoint)
                if device is None:
                    problems.append(f"stage {stage.name!r}: no device {endpoint!r} has registered")
                    continue
                runtime = (device.capabilities or {}).get("runtime")
                if not device.board_id or not runtime:
                    problems.append(
                        f"stage {stage.name!r}: {endpoint} has not reported its board and runtime"
                    )
                    continue
                nodes.append((endpoint, device.board_id, str(runtime)))
        for endpoint, board, runtime in nodes:
            try:
                groups[(stage.name, _module_for(ctx, variant_id, board, runtime))].append(endpoint)
            except InvalidInput as exc:
                problems.append(f"stage {stage.name!r}, node {endpoint}: {exc.detail}")
    if problems:
        raise InvalidInput("the pipeline cannot be applied: " + "; ".join(problems))
    return groups


def apply_pipeline(ctx: Context, ref: str) -> dict[str, Any]:
    """Gate every node, then start one campaign per (stage, module); the server configures the nodes."""
    with ctx.session() as session:
        row = _row(session, ref)
        transition(PipelineState(row.state), PipelineState.APPLYING)
        spec = PipelineSpec.model_validate(row.spec)
        pipeline_id = row.id
    groups = _groups(ctx, spec)
    refusals = []
    for (stage, module_id), nodes in groups.items():
        try:
            preview = preview_campaign(ctx, module_id, ",".join(nodes))
        except InvalidInput as exc:
            refusals.append(f"stage {stage!r}: {exc.detail}")
            continue
        refusals += [
            f"stage {stage!r}, node {d['endpoint']}: {'; '.join(d['reasons'])}"
            for d in preview["devices"]
            if not d["fits"]
        ]
    if refusals:
        raise InvalidInput("the compatibility gate refuses the pipeline: " + "; ".join(refusals))
    campaigns: dict[str, list[str]] = defaultdict(list)
    for (stage, module_id), nodes in groups.items():
        campaigns[stage].append(create_campaign(ctx, module_id, ",".join(nodes)).id)
    keys = {node: secrets.token_hex(HOP_KEY_BYTES) for stage in spec.stages[:-1] for node in stage.nodes}
    with ctx.session() as session:
        row = _row(session, pipeline_id)
        row.state = PipelineState.APPLYING.value
        row.error = None
        row.applied = {"campaigns": dict(campaigns), "keys": keys, "nodes": {}, "configured": []}
        row.updated_at = datetime.now(UTC)
        session.flush()
        return _view(row)


def stop_pipeline(ctx: Context, ref: str) -> dict[str, Any]:
    """Mark the pipeline stopped; the runner clears its nodes' stage configuration."""
    with ctx.session() as session:
        row = _row(session, ref)
        row.state = transition(PipelineState(row.state), PipelineState.STOPPED).value
        row.updated_at = datetime.now(UTC)
        session.flush()
        return _view(row)


def pipelines_to_drive(ctx: Context) -> list[tuple[str, PipelineState]]:
    """Pipelines the server's runner has work on: applying, running, or stopped with nodes to clear."""
    with ctx.session() as session:
        rows = PipelineRepository(session).all(
            states=(
                PipelineState.APPLYING.value,
                PipelineState.RUNNING.value,
                PipelineState.STOPPED.value,
            )
        )
        return [
            (row.id, PipelineState(row.state))
            for row in rows
            if row.state != PipelineState.STOPPED.value or (row.applied or {}).get("configured")
        ]


def pipeline_snapshot(ctx: Context, pipeline_id: str) -> tuple[PipelineSpec, dict[str, Any]]:
    """The declaration and what applying it set up, keys included: for the server's runner only."""
    with ctx.session() as session:
        row = PipelineRepository(session).get(pipeline_id)
        return PipelineSpec.model_validate(row.spec), dict(row.applied or {})


def record_progress(ctx: Context, pipeline_id: str, expect: PipelineState, **changes: Any) -> None:
    """Store what the runner did or read, unless someone moved the pipeline on meanwhile (a stop wins
    over the runner); ``applied`` entries are merged into the stored ones, other changes set columns."""
    with ctx.session() as session:
        row = PipelineRepository(session).get(pipeline_id)
        if row.state != expect.value:
            return
        applied = dict(row.applied or {})
        applied.update(changes.pop("applied", {}))
        row.applied = applied
        for key, value in changes.items():
            setattr(row, key, value)
        row.updated_at = datetime.now(UTC)


def campaigns_outcome(ctx: Context, applied: dict[str, Any]) -> tuple[bool, str | None]:
    """(all done, the first failure) over the pipeline's campaigns."""
    with ctx.session() as session:
        repo = CampaignRepository(session)
        done = True
        for stage, ids in applied.get("campaigns", {}).items():
            for campaign_id in ids:
                campaign = repo.campaign(campaign_id)
                if campaign.state in _FAILED_CAMPAIGN:
                    return False, f"stage {stage!r}: campaign {campaign_id} is {campaign.state}"
                for endpoint, installation in repo.installations(campaign_id).items():
                    if installation.state in (
                        InstallationState.FAILED.value,
                        InstallationState.REFUSED.value,
                    ):
                        return False, (
                            f"stage {stage!r}: installing on {endpoint} {installation.state} "
                            f"(campaign {campaign_id})"
                        )
                if campaign.state != CampaignState.COMPLETED.value:
                    done = False
        return done, None
