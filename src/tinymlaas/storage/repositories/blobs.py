"""Which blobs the store still needs: every column that names a blob, read together."""

from __future__ import annotations

from sqlalchemy import select, union
from sqlalchemy.orm import Session

from tinymlaas.storage.tables import ModelRow, ModuleRow, SampleRow, SnapshotSampleRow, VariantRow

__all__ = ["BlobReferenceRepository"]


class BlobReferenceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def referenced(self) -> set[str]:
        """Every blob digest a row names; a blob outside this set is garbage once no write is in flight."""
        query = union(
            select(SampleRow.blob),
            select(SnapshotSampleRow.blob),
            select(ModelRow.keras_blob).where(ModelRow.keras_blob.is_not(None)),
            select(VariantRow.tflite_blob),
            select(ModuleRow.package_blob).where(ModuleRow.package_blob.is_not(None)),
        )
        return set(self.session.scalars(query))
