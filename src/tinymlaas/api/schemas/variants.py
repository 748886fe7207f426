"""Variants (a model converted to one quantization and measured in the runtimes) and compiling them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tinymlaas.services.views import VariantView

__all__ = ["CompileCreate", "VariantDetailPublic", "VariantPublic", "VariantsPublic"]


class VariantPublic(VariantView):
    """A variant, as the service gives it."""


class VariantDetailPublic(VariantPublic):
    model_name: str
    model_version: int
    float_metric: dict[str, Any] | None = Field(description="The float model's score, to compare with.")
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    layers: list[dict[str, Any]] = Field(description="Per layer: operator, output shape, params, MACs.")
    modules: list[dict[str, Any]]


class VariantsPublic(BaseModel):
    data: list[VariantPublic]
    count: int


class CompileCreate(BaseModel):
    """Compile a variant into an inference module for one board, as a background job."""

    board: str = Field(min_length=1, examples=["pico"])
    runtime: str | None = Field(None, examples=["tflm"], description="Default: the board's first runtime.")
    compiler: str | None = Field(
        None,
        max_length=64,
        examples=["native"],
        description="A compiler plugin by name (tflm, litert, native …); default: the runtime's own.",
    )
