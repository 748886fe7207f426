"""Compiled modules and their fit report against the board they were compiled for."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tinymlaas.api.schemas.training import RunModelPublic
from tinymlaas.services.views import ModuleView

__all__ = ["FitCheckPublic", "FitReportPublic", "ModuleDetailPublic", "ModulePublic", "ModulesPublic"]


class ModulePublic(ModuleView):
    model: RunModelPublic
    quantization: str
    created_at: str | None
    sandbox: bool = Field(
        False, description="Compiled by a dry run: never listed with production modules nor deployed."
    )


class ModuleDetailPublic(ModulePublic):
    manifest: dict[str, Any] | None


class ModulesPublic(BaseModel):
    data: list[ModulePublic]
    count: int


class FitCheckPublic(BaseModel):
    check: str = Field(description="runtime, ops, runs, flash, ram or package.")
    passed: bool | None = Field(description="None when the figure it needs was never measured.")
    reason: str
    needed_bytes: int | None = None
    usable_bytes: int | None = None


class FitReportPublic(BaseModel):
    module: str
    variant: str
    board: str
    board_name: str | None = None
    runtime: str
    fits: bool = Field(description="The verdict recorded at compile time; the deployment gate uses it.")
    reasons: list[str]
    flash_bytes: int | None
    ram_bytes: int | None
    usable_flash_bytes: int | None = Field(description="What the board leaves for a model (catalog).")
    usable_ram_bytes: int | None
    checks: list[FitCheckPublic]
    note: str | None = Field(description="Why there are no checks, when the board left the catalog.")
