"""Bringing a model in from elsewhere, and squeezing a stored one."""

from __future__ import annotations

from pydantic import BaseModel, Field

from tinymlaas.api.schemas.core import ModelPublic
from tinymlaas.api.schemas.variants import VariantPublic

__all__ = ["ModelImportedPublic", "SqueezeCreate"]


class ModelImportedPublic(ModelPublic):
    variants: list[VariantPublic] = Field(
        default_factory=list, description="An imported .tflite is one variant, measured like ours."
    )


class SqueezeCreate(BaseModel):
    """Which quantizations to convert the model to; all three when left out."""

    quantizations: list[str] | None = Field(None, examples=[["int8"]], description="float32, float16, int8.")
