"""A dry run's sandbox: the dataset it generated and every row made from it, removed together.

Removal crosses the dataset and model aggregates because a sandbox is exactly that lineage
(dataset -> samples and snapshots -> training runs -> models -> variants -> modules) and must go
as one unit of work, or a half-removed dry run would leave rows pointing at nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from tinymlaas.errors import Conflict, InvalidInput
from tinymlaas.storage.tables import (
    CampaignRow,
    CollectedSampleRow,
    DatasetRow,
    JobRow,
    ModelRow,
    ModuleRow,
    SampleRow,
    SnapshotRow,
    SnapshotSampleRow,
    TrainingRunRow,
    VariantRow,
)

__all__ = ["Removed", "SandboxRepository"]


@dataclass(frozen=True)
class Removed:
    """What removing a sandbox took out: row counts per kind, and the blobs those rows named."""

    rows: dict[str, int]
    blobs: frozenset[str]


class SandboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def remove(self, dataset: DatasetRow, job_ids: Iterable[str] = ()) -> Removed:
        """Delete the sandbox ``dataset``, all made from it and the jobs ``job_ids``.

        InvalidInput for a production dataset; Conflict when a campaign names one of its modules,
        which the deployment gate refuses, so only a store changed by hand has one.
        """
        if not dataset.sandbox:
            raise InvalidInput(f"dataset {dataset.name!r} is production data, not a dry run's sandbox")
        snapshots = self._ids(select(SnapshotRow.id).where(SnapshotRow.dataset_id == dataset.id))
        runs = self._ids(select(TrainingRunRow.id).where(TrainingRunRow.snapshot_id.in_(snapshots)))
        models = self._ids(
            select(ModelRow.id).where(
                or_(ModelRow.dataset_id == dataset.id, ModelRow.training_run_id.in_(runs))
            )
        )
        variants = self._ids(select(VariantRow.id).where(VariantRow.model_id.in_(models)))
        modules = self._ids(select(ModuleRow.id).where(ModuleRow.variant_id.in_(variants)))
        deployed = self._ids(select(CampaignRow.id).where(CampaignRow.module_id.in_(modules)))
        if deployed:
            listed = ", ".join(sorted(deployed))
            raise Conflict(f"campaigns {listed} deploy modules of dataset {dataset.name!r}")
        blobs = self._blobs(
            select(SampleRow.blob).where(SampleRow.dataset_id == dataset.id),
            select(SnapshotSampleRow.blob).where(SnapshotSampleRow.snapshot_id.in_(snapshots)),
            select(ModelRow.keras_blob).where(ModelRow.id.in_(models)),
            select(VariantRow.tflite_blob).where(VariantRow.id.in_(variants)),
            select(ModuleRow.package_blob).where(ModuleRow.id.in_(modules)),
        )
        # Children first, so the order holds whether or not the database cascades deletes.
        rows = {
            "modules": self._delete(delete(ModuleRow).where(ModuleRow.id.in_(modules))),
            "variants": self._delete(delete(VariantRow).where(VariantRow.id.in_(variants))),
            "models": self._delete(delete(ModelRow).where(ModelRow.id.in_(models))),
            "training_runs": self._delete(delete(TrainingRunRow).where(TrainingRunRow.id.in_(runs))),
            "snapshot_samples": self._delete(
                delete(SnapshotSampleRow).where(SnapshotSampleRow.snapshot_id.in_(snapshots))
            ),
            "snapshots": self._delete(delete(SnapshotRow).where(SnapshotRow.id.in_(snapshots))),
            "collected_samples": self._delete(
                delete(CollectedSampleRow).where(CollectedSampleRow.dataset_id == dataset.id)
            ),
            "samples": self._delete(delete(SampleRow).where(SampleRow.dataset_id == dataset.id)),
            "datasets": self._delete(delete(DatasetRow).where(DatasetRow.id == dataset.id)),
            "jobs": self._delete(delete(JobRow).where(JobRow.id.in_(list(job_ids)))),
        }
        return Removed(rows, frozenset(blobs))

    def _ids(self, query: Any) -> list[str]:
        return list(self.session.scalars(query))

    def _blobs(self, *queries: Any) -> set[str]:
        return {blob for query in queries for blob in self.session.scalars(query) if blob is not None}

    def _delete(self, statement: Any) -> int:
        result = self.session.execute(statement.execution_options(synchronize_session=False))
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
