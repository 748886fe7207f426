"""A pipeline: a declared graph of stages on nodes, validated once, with its lifecycle as a state machine.

A stage runs one model (or one part of a split model) on one or more nodes. The first stage is the
source: its nodes run their model on their sensor windows. Every other stage receives the previous
stage's output tensor over CoAP. ``condition`` makes a cascade (the next stage sees only outputs that
pass it); several nodes in a stage make it parallel (``fanout``: messages spread round-robin over
them, or sent to all), and their results are joined in the stage's counts. Declared as TOML or JSON::

    name = "doorbell"
    [[stages]]
    name = "gate"
    model = "scenes-gate"
    nodes = ["mcu-1"]
    condition = "not:background"
    link = "ble"
    [[stages]]
    name = "classify"
    model = "scenes"
    nodes = ["gw-1", "gw-2"]
"""

from __future__ import annotations

import re
import tomllib
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tinymlaas.errors import InvalidInput
from tinymlaas.lwm2m.linkemu import PROFILES

__all__ = [
    "MAX_NODES",
    "MAX_STAGES",
    "PIPELINE_TRANSITIONS",
    "PipelineSpec",
    "PipelineState",
    "StageSpec",
    "check_condition",
    "parse_pipeline",
    "transition",
]

MAX_STAGES = 8
MAX_NODES = 32  # per stage
MAX_SPEC_BYTES = 64 * 1024
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_CONDITION = re.compile(r"^(|not:[^\s:]{1,64}|label:[^\s:]{1,64}|score>=(0(\.\d+)?|1(\.0+)?))$")


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError("letters, digits, '_', '.', '-', starting with a letter or digit")
    return value


# A pipeline's or stage's name: it appears in CoAP paths (/hop/<pipeline>/<stage>) and on pages.
Name = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_name)]
# A node is a device's LwM2M endpoint name, whatever characters its maker gave it.
NodeName = Annotated[str, Field(min_length=1, max_length=128)]


def check_condition(condition: str) -> str:
    """``""`` (always), ``not:<label>``, ``label:<label>`` or ``score>=<t>`` with t in 0..1."""
    if not _CONDITION.match(condition):
        raise InvalidInput(
            f"condition {condition!r}: use '' (always pass), 'not:<label>', 'label:<label>' "
            "or 'score>=<0..1>'"
        )
    return condition


class StageSpec(BaseModel):
    """One stage: what runs, where, and what it passes on."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    model: str | None = Field(None, max_length=160, description="Model id, name or name:version.")
    split: str | None = Field(None, max_length=32, description="A split plan id; with part.")
    part: Literal["head", "tail"] | None = None
    nodes: list[NodeName] = Field(min_length=1, max_length=MAX_NODES, description="Device endpoints.")
    condition: str = Field("", max_length=80, description="Cascade: forward only outputs that pass.")
    fanout: Literal["round-robin", "all"] = "round-robin"
    link: str | None = Field(None, description="Link profile emulated on this stage's outgoing hops.")

    @field_validator("condition")
    @classmethod
    def _condition(cls, value: str) -> str:
        try:
            return check_condition(value)
        except InvalidInput as exc:
            raise ValueError(exc.detail) from None

    @field_validator("link")
    @classmethod
    def _link(cls, value: str | None) -> str | None:
        if value is not None and value not in PROFILES:
            raise ValueError(f"unknown link {value!r}; links: {', '.join(PROFILES)}")
        return value

    @model_validator(mode="after")
    def _what_runs(self) -> StageSpec:
        if (self.model is None) == (self.split is None):
            raise ValueError("give exactly one of model or split (with part)")
        if self.split is not None and self.part is None:
            raise ValueError("a split stage names its part: head or tail")
        if self.split is None and self.part is not None:
            raise ValueError("part applies only to a split stage")
        if len(set(self.nodes)) != len(self.nodes):
            raise ValueError("a node is listed twice")
        return self


class PipelineSpec(BaseModel):
    """Stages in order: each stage's output goes to the next; the last one reports results."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    stages: list[StageSpec] = Field(min_length=2, max_length=MAX_STAGES)

    @model_validator(mode="after")
    def _graph(self) -> PipelineSpec:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError("stage names must be unique")
        seen: dict[str, str] = {}
        for stage in self.stages:
            for node in stage.nodes:
                if node in seen:
                    raise ValueError(
                        f"node {node!r} is in stages {seen[node]!r} and {stage.name!r}; a node runs one stage"
                    )
                seen[node] = stage.name
        for before, after in zip(self.stages, self.stages[1:], strict=False):
            if before.part == "head" and (after.part != "tail" or after.split != before.split):
                raise ValueError(f"stage {before.name!r} runs a split head: the next stage must run its tail")
            if after.part == "tail" and (before.part != "head" or before.split != after.split):
                raise ValueError(
                    f"stage {after.name!r} runs a split tail: the stage before must run its head"
                )
            if before.part == "head" and before.condition:
                raise ValueError(
                    f"stage {before.name!r} runs a split head, whose output has no labels: no condition"
                )
        if self.stages[-1].condition:
            raise ValueError("the last stage has no next stage: its condition would decide nothing")
        return self

    def next_stage(self, name: str) -> StageSpec | None:
        index = [s.name for s in self.stages].index(name)
        return self.stages[index + 1] if index + 1 < len(self.stages) else None


def parse_pipeline(text: str | bytes, *, fmt: str) -> PipelineSpec:
    """The declaration in ``fmt`` ("toml" or "json"), validated; errors name the field at fault."""
    if len(text) > MAX_SPEC_BYTES:
        raise InvalidInput(f"A pipeline declaration is at most {MAX_SPEC_BYTES} bytes, got {len(text)}")
    raw = text.decode() if isinstance(text, bytes) else text
    try:
        if fmt == "toml":
            data: Any = tomllib.loads(raw)
            return PipelineSpec.model_validate(data)
        if fmt == "json":
            return PipelineSpec.model_validate_json(raw)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInput(f"pipeline: not valid TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'pipeline'}: {error['msg']}"
            for error in exc.errors()
        )
        raise InvalidInput(f"pipeline: {problems}") from None
    raise InvalidInput(f"pipeline format {fmt!r}: use toml or json")


class PipelineState(StrEnum):
    DRAFT = "draft"  # declared, nothing deployed
    APPLYING = "applying"  # stage campaigns running, then nodes being configured
    RUNNING = "running"  # every node configured; counters are read from the nodes
    FAILED = "failed"  # a campaign or a node's configuration failed; ``error`` says which
    STOPPED = "stopped"  # the nodes' stage configuration was cleared


PIPELINE_TRANSITIONS: dict[PipelineState, frozenset[PipelineState]] = {
    PipelineState.DRAFT: frozenset({PipelineState.APPLYING}),
    PipelineState.APPLYING: frozenset({PipelineState.RUNNING, PipelineState.FAILED, PipelineState.STOPPED}),
    PipelineState.RUNNING: frozenset({PipelineState.APPLYING, PipelineState.STOPPED, PipelineState.FAILED}),
    PipelineState.FAILED: frozenset({PipelineState.APPLYING, PipelineState.STOPPED}),
    PipelineState.STOPPED: frozenset({PipelineState.APPLYING}),
}


def transition(current: PipelineState, target: PipelineState) -> PipelineState:
    if target not in PIPELINE_TRANSITIONS[current]:
        raise InvalidInput(f"a {current} pipeline cannot become {target}")
    return target
