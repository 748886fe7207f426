"""Removing a dry run's sandbox on request: its rows, and the blobs no row names any more.

A dry run is kept until someone deletes it. Its dataset, snapshots, runs, models, variants and
modules go in one transaction; a blob goes afterwards only when no row names it and nothing wrote its
content since the dry run ended, so a production import of identical samples keeps them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import BlobReferenceRepository, DatasetRepository, SandboxRepository

__all__ = ["SandboxRemoval", "remove_sandbox"]


@dataclass(frozen=True)
class SandboxRemoval:
    """What deleting one dry run removed."""

    dataset: str
    rows: dict[str, int]  # table -> rows deleted
    blobs: int  # blobs removed
    freed_bytes: int


def remove_sandbox(
    ctx: Context, dataset: str, *, ended_at: datetime, job_ids: Sequence[str] = ()
) -> SandboxRemoval:
    """Delete the sandbox dataset ``dataset``, everything made from it and the jobs ``job_ids``.

    ``ended_at`` is when the dry run stopped writing: a blob touched after it is spared. NotFound for
    an unknown dataset, InvalidInput for a production one (nothing is removed).
    """
    with ctx.session() as session:
        row = DatasetRepository(session).get(dataset)
        removed = SandboxRepository(session).remove(row, job_ids)
    with ctx.session() as session:
        referenced = BlobReferenceRepository(session).referenced()
    ended = ended_at if ended_at.tzinfo else ended_at.replace(tzinfo=UTC)  # SQLite's are naive UTC
    freed = [
        ctx.blobs.discard(digest, untouched_since=ended.timestamp())
        for digest in sorted(removed.blobs - referenced)
    ]
    return SandboxRemoval(dataset, removed.rows, sum(1 for n in freed if n), sum(freed))
