"""Every store test runs on SQLite and on PostgreSQL, but for those about SQLite files themselves."""

import pytest

# Modules about the SQLite file (its schema as SQLite reports it, its migration of old rows) and the
# blob stores, which no database backend changes.
SQLITE_ONLY_MODULES = {"test_store.py", "test_sandbox_migration.py", "test_blob_stores.py"}


def pytest_collectstart(collector: pytest.Collector) -> None:
    if isinstance(collector, pytest.Module) and collector.path.name in SQLITE_ONLY_MODULES:
        collector.add_marker(pytest.mark.store_backends("sqlite"))


@pytest.fixture(autouse=True)
def _on_each_backend(store: str) -> None:
    """Requested for its effect: a fresh store on the test's backend."""
