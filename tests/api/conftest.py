"""A real uvicorn server on a free port, a token per role, and a store seeded without training."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import httpx
import pytest

from helpers.postgres import DATABASE_URL_VARIABLE
from helpers.seeding import add_campaign, add_model_chain, register_device
from helpers.servers import Api, serve
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import DeviceRepository


def seed_store(context: Context) -> None:
    """One model with a variant and a module, two devices, and a running campaign to one of them."""
    now = datetime.now(UTC)
    with context.session() as session:
        add_model_chain(
            session, model_id="mdl_seed", variant_id="var_seed", module_id="mod_seed", board="pico"
        )
        devices = DeviceRepository(session)
        for endpoint, board in (("dev-a", "pico"), ("dev-b", "rpi4")):
            register_device(devices, endpoint, now)
            devices.set_reported(endpoint, board_id=board, capabilities={})
        devices.mark_offline("dev-b")
        add_campaign(
            session, campaign_id="cmp_seed", module_id="mod_seed", selector="board:pico", endpoint="dev-a",
            state="running", installation="pending", at=now,
        )  # fmt: skip


# Schema fuzzing builds its store when the module is imported, before any fixture can choose a backend.
# Run with TINYMLAAS_DATABASE_URL naming a fresh PostgreSQL database, it fuzzes that store instead.
SQLITE_ONLY_MODULES = {"test_openapi_fuzz.py"}


def pytest_collectstart(collector: pytest.Collector) -> None:
    if isinstance(collector, pytest.Module) and collector.path.name in SQLITE_ONLY_MODULES:
        collector.add_marker(pytest.mark.store_backends("sqlite"))


@pytest.fixture(autouse=True)
def _on_each_backend(
    store_backend: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh store per test, but for a test of the package's API server, which shares the server's
    store: a CLI it runs on the server's data directory must find the same store on PostgreSQL too."""
    if "api" not in request.fixturenames:
        request.getfixturevalue("store")
    elif store_backend == "postgresql":
        monkeypatch.setenv(DATABASE_URL_VARIABLE, request.getfixturevalue("package_store").url)


@pytest.fixture(scope="package")
def api(tmp_path_factory) -> Iterator[Api]:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("api") / "data"))
    seed_store(context)
    with serve(context) as api:
        yield api


def assert_problem(response: httpx.Response, status: int) -> dict:
    """Checks that the response is an RFC 9457 problem document with ``status``; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    assert body["instance"] == response.request.url.path
    return body


@pytest.fixture
def problem() -> Callable[[httpx.Response, int], dict]:
    return assert_problem
