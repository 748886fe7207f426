"""Every job test runs on SQLite and on PostgreSQL: workers write their progress to the store."""

import pytest


@pytest.fixture(autouse=True)
def _on_each_backend(store: str) -> None:
    """Requested for its effect: a fresh store on the test's backend."""
