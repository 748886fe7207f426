"""A real uvicorn server on a free port, a token per role, and a store seeded without training."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest
import uvicorn

from tinymlaas.api.app import create_app
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import CampaignRepository, DeviceRepository
from tinymlaas.storage.tables import CampaignRow, InstallationRow, ModelRow, ModuleRow, VariantRow


@dataclass(frozen=True)
class Api:
    client: httpx.Client
    context: Context
    tokens: dict[Role, str]

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


def seed_store(context: Context) -> None:
    """One model with a variant and a module, two devices, and a running campaign to one of them."""
    now = datetime.now(UTC)
    with context.session() as session:
        session.add(ModelRow(id="mdl_seed", name="wave", version=1, origin="imported", arch="cnn", params=10))
        session.flush()
        session.add(
            VariantRow(
                id="var_seed", model_id="mdl_seed", quantization="int8", tflite_blob="0" * 64, size_bytes=100,
                info={"ops": [], "layers": [], "inputs": [], "outputs": []}, arena_bytes=1024, arena_tries=1,
                metrics={}, runtime_errors={}, selftests={},
            )
        )  # fmt: skip
        session.flush()
        session.add(
            ModuleRow(
                id="mod_seed", variant_id="var_seed", board_id="pico", compiler="tflm", runtime="tflm",
                package_blob=None, manifest=None, flash_bytes=None, ram_bytes=None, fits=True, reasons=[],
            )
        )  # fmt: skip
        session.flush()
        devices = DeviceRepository(session)
        for endpoint, board in (("dev-a", "pico"), ("dev-b", "rpi4")):
            devices.upsert_registration(
                endpoint, new_id=f"dev_{endpoint}", registration_id="r1", address=None, lifetime=60,
                lwm2m_version="1.1", objects=["/3/0"], registered_at=now,
            )  # fmt: skip
            devices.set_reported(endpoint, board_id=board, capabilities={})
        devices.mark_offline("dev-b")
        CampaignRepository(session).add(
            CampaignRow(
                id="cmp_seed", module_id="mod_seed", selector="board:pico",
                plan={"stages": [100], "max_failures": 0, "targets": ["dev-a"]},
                state="running", current_stage=0, created_at=now, updated_at=now,
            ),
            [
                InstallationRow(
                    campaign_id="cmp_seed", endpoint="dev-a", state="pending", detail={}, updated_at=now
                )
            ],
        )  # fmt: skip


@pytest.fixture(scope="package")
def api(tmp_path_factory) -> Iterator[Api]:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("api") / "data"))
    seed_store(context)
    tokens = {role: create_token(context, role, f"test {role}")[1] for role in Role}
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(context), lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as client:
        yield Api(client, context, tokens)
    server.should_exit = True
    thread.join(10)
    sock.close()


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
