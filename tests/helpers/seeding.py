"""Stores seeded with rows written directly, and the servers and logged-in clients tests reach them by.

Rows are written straight to the store so that pages and routes can be tested on known figures
without training or compiling anything; each builder fills in what no test looks at.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tinymlaas.metrics import Metric, wilson_interval
from tinymlaas.server.app import create_app
from tinymlaas.services.auth import Role, create_token
from tinymlaas.services.context import Context
from tinymlaas.storage.repositories import CampaignRepository, DeviceRepository, ModelRepository
from tinymlaas.storage.tables import CampaignRow, InstallationRow, ModelRow, ModuleRow, VariantRow


def add_variant(
    session: Session, *, model_id: str, variant_id: str, version: int = 1, inputs: Sequence[dict] = ()
) -> None:
    """An imported model "wave" with one int8 variant that was never measured in a runtime."""
    session.add(ModelRow(id=model_id, name="wave", version=version, origin="imported", arch="cnn", params=10))
    session.flush()
    session.add(
        VariantRow(
            id=variant_id, model_id=model_id, quantization="int8", tflite_blob="0" * 64, size_bytes=100,
            info={"ops": [], "layers": [], "inputs": list(inputs), "outputs": []}, arena_bytes=1024,
            arena_tries=1, metrics={}, runtime_errors={}, selftests={},
        )
    )  # fmt: skip
    session.flush()


def add_module(
    session: Session,
    *,
    module_id: str,
    variant_id: str,
    board: str,
    package_blob: str | None = None,
    manifest: dict[str, Any] | None = None,
    flash_bytes: int | None = None,
    ram_bytes: int | None = None,
    fits: bool = True,
    reasons: Sequence[str] = (),
) -> None:
    """A TFLM module of ``variant_id`` for ``board``; by default one with no package or figures."""
    session.add(
        ModuleRow(
            id=module_id, variant_id=variant_id, board_id=board, compiler="tflm", runtime="tflm",
            package_blob=package_blob, manifest=manifest, flash_bytes=flash_bytes, ram_bytes=ram_bytes,
            fits=fits, reasons=list(reasons),
        )
    )  # fmt: skip
    session.flush()


def add_model_chain(
    session: Session,
    *,
    model_id: str,
    variant_id: str,
    module_id: str,
    board: str,
    version: int = 1,
    inputs: Sequence[dict] = (),
    **module: Any,
) -> None:
    """A model, its variant and one module of it for ``board``; ``module`` goes to ``add_module``."""
    add_variant(session, model_id=model_id, variant_id=variant_id, version=version, inputs=inputs)
    add_module(session, module_id=module_id, variant_id=variant_id, board=board, **module)


def register_device(
    devices: DeviceRepository,
    endpoint: str,
    at: datetime,
    *,
    address: str | None = None,
    lifetime: int = 60,
    objects: Sequence[str] = ("/3/0",),
) -> None:
    """``endpoint`` registered over LwM2M 1.1 at ``at`` (row id ``dev_<endpoint>``), online from then."""
    devices.upsert_registration(
        endpoint, new_id=f"dev_{endpoint}", registration_id="r1", address=address, lifetime=lifetime,
        lwm2m_version="1.1", objects=list(objects), registered_at=at,
    )  # fmt: skip


def add_campaign(
    session: Session,
    *,
    campaign_id: str,
    module_id: str,
    selector: str,
    endpoint: str,
    state: str,
    installation: str,
    at: datetime,
    detail: dict[str, Any] | None = None,
    **installation_fields: Any,
) -> None:
    """A one-stage campaign of ``module_id`` to ``endpoint`` alone, its installation in ``installation``."""
    CampaignRepository(session).add(
        CampaignRow(
            id=campaign_id, module_id=module_id, selector=selector,
            plan={"stages": [100], "max_failures": 0, "targets": [endpoint]},
            state=state, current_stage=0, created_at=at, updated_at=at,
        ),
        [
            InstallationRow(
                campaign_id=campaign_id, endpoint=endpoint, state=installation, detail=detail or {},
                updated_at=at, **installation_fields,
            )
        ],
    )  # fmt: skip


@contextmanager
def logged_in_client(
    context: Context, role: Role, *, name: str = "", landing: str = "/"
) -> Iterator[TestClient]:
    """The whole app in a TestClient holding the session cookie of a person who logged in as ``role``.

    Like a browser on a dashboard page, the client sends the dashboard's own Origin and the session's
    CSRF token (read from the landing page) with every request. No executor is given, so jobs the
    pages submit stay queued.
    """
    with TestClient(create_app(context)) as client:
        login = log_in(client, create_token(context, role, name)[1], landing)
        assert login.status_code == 303, login.text
        assert client.get(landing).status_code == 200
        yield client


def csrf_token(page: str) -> str:
    """The CSRF token a rendered dashboard page put into its forms."""
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match, "the page has no form carrying a CSRF token"
    return match.group(1)


def log_in(client: httpx.Client, token: str, landing: str = "/") -> httpx.Response:
    """Log ``client`` in to the dashboard the way a browser on its pages does; the login's response.

    From then on the client sends the dashboard's own Origin and, once logged in, the session's CSRF
    token (read from a page's forms) with every request, as a browser posting those forms would.
    """
    client.headers["Origin"] = f"{client.base_url.scheme}://{client.base_url.netloc.decode()}"
    response = client.post("/login", data={"token": token, "next": landing}, follow_redirects=False)
    if response.status_code == 303:
        client.headers["X-CSRF-Token"] = csrf_token(client.get("/").text)
    return response


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` under a real uvicorn server on a free port; yields its base URL, stops it on leaving."""
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def accuracy(hits: int, n: int) -> dict[str, Any]:
    """A stored accuracy metric of ``hits`` of ``n`` with its Wilson interval, as scoring stores it."""
    return Metric("accuracy", hits / n, n, *wilson_interval(hits, n)).as_dict()


def add_degraded_chain(session: Session) -> None:
    """Model ``mdl_w`` (float 27/27) whose int8 ``var_w`` scored 18/27 in TFLM, as post-training int8
    of the unscaled tabular CSV did, and its packaged nano33ble module ``mod_w``."""
    add_model_chain(
        session, model_id="mdl_w", variant_id="var_w", module_id="mod_w", board="nano33ble",
        package_blob="1" * 64, manifest={"board": "nano33ble", "runtime": "tflm"}, flash_bytes=10,
        ram_bytes=10,
    )  # fmt: skip
    repo = ModelRepository(session)
    repo.model("mdl_w").float_metric = accuracy(27, 27)
    variant = repo.variant("var_w")
    variant.metrics = {"tflm": accuracy(18, 27)}
    variant.method = "ptq"
