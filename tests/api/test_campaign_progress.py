"""A campaign's progress once devices finish: ``done`` counts them, for the list and for one campaign."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from helpers.seeding import add_model_chain, register_device
from helpers.servers import Api, serve
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import CampaignRepository, DeviceRepository
from tinymlaas.storage.tables import CampaignRow, InstallationRow

FINISHED = {"dev-1": "succeeded", "dev-2": "succeeded", "dev-3": "failed", "dev-4": "sent"}


@pytest.fixture
def finished(tmp_path) -> Iterator[Api]:
    context = Context(Settings(data_dir=tmp_path / "data"))
    now = datetime.now(UTC)
    with context.session() as session:
        add_model_chain(session, model_id="mdl_p", variant_id="var_p", module_id="mod_p", board="pico")
        devices = DeviceRepository(session)
        for endpoint in FINISHED:
            register_device(devices, endpoint, now)
        CampaignRepository(session).add(
            CampaignRow(
                id="cmp_done", module_id="mod_p", selector="board:pico",
                plan={"stages": [100], "max_failures": 5, "targets": list(FINISHED)},
                state="running", current_stage=0, created_at=now, updated_at=now,
            ),
            [
                InstallationRow(campaign_id="cmp_done", endpoint=e, state=s, detail={}, updated_at=now)
                for e, s in FINISHED.items()
            ],
        )  # fmt: skip
    with serve(context) as api:
        yield api


def test_two_finished_devices_are_counted_not_a_server_error(finished) -> None:
    viewer = finished.auth(Role.VIEWER)
    listed = finished.client.get("/campaigns", headers=viewer)
    assert listed.status_code == 200, listed.text
    shown = finished.client.get("/campaigns/cmp_done", headers=viewer)
    assert shown.status_code == 200, shown.text
    for campaign in (listed.json()["data"][0], shown.json()):
        assert (campaign["done"], campaign["targets"], campaign["percent_done"]) == (3, 4, 75.0)
        assert campaign["counts"] == {"succeeded": 2, "failed": 1, "sent": 1}
