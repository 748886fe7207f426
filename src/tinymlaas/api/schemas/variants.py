"""Variants (a model converted to one quantization and measured in the runtimes) and compiling them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

__all__ = ["CompileCreate", "VariantDetailPublic", "VariantPublic", "VariantsPublic"]


class VariantPublic(BaseModel):
    id: str
    model: str
    quantization: str = Field(description="float32, float16 or int8.")
    size_bytes: int
    arena_bytes: int | None = Field(description="The tensor arena TFLM needed, as measured.")
    ops: list[str]
    params: int
    macs: int
    metrics: dict[str, Any] = Field(description="Runtime -> its score on the test split, measured in it.")
    runtime_errors: dict[str, str] = Field(description="Runtime -> why it cannot run this variant.")
    evaluated_on: str | None = Field(description="The snapshot the metrics were measured on.")


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
