"""What each job kind takes: one pydantic model per kind, validated once when the job is submitted.

The stored job keeps the validated parameters as JSON; the worker reads them back into the same
model, so a runner gets typed values and never re-checks them.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, Strict, ValidationError
from pydantic_core import ErrorDetails

from tinymlaas.errors import InvalidInput
from tinymlaas.jobs.states import JobKind
from tinymlaas.squeeze.convert import Quantization
from tinymlaas.training.search_space import MAX_EPOCHS, MAX_TRIALS, MAX_WORKERS

__all__ = [
    "PARAMS",
    "CompileParams",
    "JobParams",
    "LifecycleParams",
    "SearchParams",
    "SplitParams",
    "SqueezeParams",
    "TrainParams",
    "parse_params",
]


class JobParams(BaseModel):
    """Strict: a JSON body's ``"3"`` is not the integer 3, and a name a job does not take is refused."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    def stored(self) -> dict[str, Any]:
        """The parameters as the job row keeps them: JSON values, unset ones left out."""
        return self.model_dump(mode="json", exclude_none=True)


class TrainParams(JobParams):
    dataset: str
    arch: str | None = None
    epochs: int | None = None
    seed: int | None = None


class SqueezeParams(JobParams):
    model: str
    # Lax, so the quantizations' names (all a JSON body can hold) become members.
    quantizations: list[Annotated[Quantization, Strict(False)]] | None = None


class CompileParams(JobParams):
    variant: str
    board: str
    runtime: str | None = None
    compiler: str | None = Field(None, max_length=64)


class SplitParams(JobParams):
    model: str = Field(max_length=160)
    chain: str = Field(max_length=200)
    objective: str = Field("latency", max_length=16)
    build: bool = False
    cut: int | None = Field(None, ge=0)


class SearchParams(JobParams):
    """A constraint-aware model search (``services.search.run_search``); budgets in bytes and ms."""

    dataset: str = Field(max_length=128)
    boards: list[Annotated[str, Field(max_length=64)]] = Field(min_length=1, max_length=16)
    max_ram: int | None = Field(None, ge=1)
    max_flash: int | None = Field(None, ge=1)
    max_latency_ms: float | None = Field(None, gt=0)
    trials: int = Field(24, ge=1, le=MAX_TRIALS)
    workers: int | None = Field(None, ge=1, le=MAX_WORKERS)
    epochs: int | None = Field(None, ge=1, le=MAX_EPOCHS)
    arch: str | None = Field(None, max_length=64)
    seed: int | None = None


class LifecycleParams(JobParams):
    dataset: str
    boards: list[str] = Field(min_length=1)
    arch: str | None = None
    epochs: int | None = None
    seed: int | None = None


PARAMS: Mapping[JobKind, type[JobParams]] = MappingProxyType(
    {
        JobKind.TRAIN: TrainParams,
        JobKind.SQUEEZE: SqueezeParams,
        JobKind.COMPILE: CompileParams,
        JobKind.LIFECYCLE: LifecycleParams,
        JobKind.SPLIT: SplitParams,
        JobKind.SEARCH: SearchParams,
    }
)

_NOUNS = {"string_type": "a string", "int_type": "an integer", "list_type": "a list", "tuple_type": "a list"}


def _problem(kind: JobKind, model: type[JobParams], errors: list[ErrorDetails]) -> str:
    """One sentence naming the first wrong field, worded for the person who sent the parameters."""
    unknown = sorted(str(e["loc"][0]) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return f"a {kind.value} job takes no {', '.join(unknown)} (it takes {', '.join(model.model_fields)})"
    error = errors[0]
    name, *inside = error["loc"]
    if error["type"] == "missing":
        return f"a {kind.value} job needs {name!r}"
    if error["type"] == "too_short":
        return f"a {kind.value} job needs at least one {str(name).removesuffix('s')}"
    if error["type"] == "enum":
        bad = sorted({str(e["input"]) for e in errors if e["type"] == "enum"})
        known = ", ".join(sorted(q.value for q in Quantization))
        return f"unknown quantization {', '.join(bad)} (known: {known})"
    expected = _NOUNS.get(error["type"], error["msg"].lower())
    if inside:
        expected = f"a list of {expected.split()[-1]}s"
    return f"{kind.value} job parameter {name!r} must be {expected}"


def parse_params(kind: JobKind, params: Mapping[str, Any]) -> JobParams:
    """``params`` as ``kind``'s model; a parameter given as None counts as not given."""
    model = PARAMS[kind]
    try:
        return model.model_validate({name: value for name, value in params.items() if value is not None})
    except ValidationError as exc:
        raise InvalidInput(_problem(kind, model, exc.errors())) from None
