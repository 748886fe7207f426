"""The job aggregate. Updates are conditional on the state a caller expects, because a worker process,
the executor and a person cancelling may write the same row at the same moment: the first writer wins
and the others learn they lost instead of overwriting."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from tinymlaas.errors import NotFound
from tinymlaas.storage.tables import JobRow

__all__ = ["JobRepository"]


class JobRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, job: JobRow) -> JobRow:
        self.session.add(job)
        self.session.flush()
        return job

    def job(self, job_id: str) -> JobRow:
        row = self.session.get(JobRow, job_id)
        if row is None:
            raise NotFound(f"no job {job_id!r} (see 'jobs list')")
        return row

    def jobs(
        self,
        *,
        states: Iterable[str] | None = None,
        kind: str | None = None,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[JobRow]:
        """Newest first, optionally only those in ``states`` and of ``kind``."""
        query = select(JobRow).order_by(JobRow.created_at.desc(), JobRow.id)
        if states is not None:
            query = query.where(JobRow.state.in_(list(states)))
        if kind is not None:
            query = query.where(JobRow.kind == kind)
        return list(self.session.scalars(query.offset(offset).limit(limit)))

    def count(self, *, states: Iterable[str] | None = None, kind: str | None = None) -> int:
        """How many jobs ``jobs`` would list with the same filters and no paging."""
        query = select(func.count()).select_from(JobRow)
        if states is not None:
            query = query.where(JobRow.state.in_(list(states)))
        if kind is not None:
            query = query.where(JobRow.kind == kind)
        return self.session.scalar(query) or 0

    def update_if(self, job_id: str, expected: Iterable[str], values: dict[str, Any]) -> bool:
        """Write ``values`` only while the job is in one of ``expected`` states; True if it was."""
        statement = (
            update(JobRow)
            .where(JobRow.id == job_id, JobRow.state.in_(list(expected)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return self.session.execute(statement).rowcount == 1  # type: ignore[attr-defined]

    def append_log_if(self, job_id: str, expected: Iterable[str], lines: str, values: dict[str, Any]) -> bool:
        """Append ``lines`` to the log in the database itself, so no concurrent append is lost."""
        return self.update_if(job_id, expected, {**values, "log": JobRow.log + lines})
