"""Model searches: what a search is asked, and the stored search with its trials and fronts.

The trials, fronts and summary stay free-form objects: a trial's figures per board are keyed by board
and what each holds depends on how the board's figures were got (measured in QEMU, estimated from
MACs, timed on this host); ``tinymlaas searches show --json`` prints the same objects.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from tinymlaas.jobs.params import SearchParams

__all__ = ["SearchCreate", "SearchListItem", "SearchPublic", "SearchSummaryPublic", "SearchesPublic"]


class SearchCreate(SearchParams):
    """A search to run as a job: ``trials`` configs of ``arch`` (the dataset's zoo family when not
    given) trained, converted to int8 and measured on each of ``boards``, within the budgets (bytes and
    ms; a board's own usable RAM and flash when a budget is not given)."""


class SearchSummaryPublic(BaseModel):
    id: str
    dataset: str
    snapshot: str = Field(description="The dataset snapshot every trial trained and was scored on.")
    arch: str = Field(description="The zoo family whose hyperparameters were searched.")
    boards: list[str]
    budget: dict[str, Any] = Field(description="max_ram and max_flash in bytes, max_latency_ms; null: none.")
    trials_planned: int
    workers: int = Field(description="Trials run at once.")
    epochs: int = Field(description="Epochs per trial, early-stopped.")
    state: str = Field(description="running, succeeded or failed.")
    error: str | None
    created_at: str
    finished_at: str | None
    fronts: dict[str, Any] = Field(
        description=(
            "Per board: trial numbers on the accuracy-vs-RAM (``ram``) and accuracy-vs-latency "
            "(``latency``) Pareto fronts, cheapest first, and ``models``: trial number -> stored model."
        )
    )
    summary: dict[str, Any] = Field(
        description=(
            "counts per trial state, closest trials and the sentence when no trial met the budget, "
            "notes, wall_s and where Ray ran."
        )
    )


class SearchPublic(SearchSummaryPublic):
    trials: list[dict[str, Any]] = Field(
        description=(
            "Per trial: trial, state (measured, pruned or failed), config, estimate per board, "
            "reason or error; a measured trial adds accuracy (value, n, 95 % interval) and per board "
            "ram_bytes, flash_bytes, latency_ms with latency_basis, within_budget and what is over."
        )
    )


class SearchListItem(SearchSummaryPublic):
    best: dict[str, Any] | None = Field(
        description="The most accurate trial within budget on at least one board (trial, accuracy, boards)."
    )


class SearchesPublic(BaseModel):
    data: list[SearchListItem]
    count: int = Field(description="Searches matching the filter before paging.")
