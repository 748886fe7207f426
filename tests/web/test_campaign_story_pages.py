"""What operators see happened: rollbacks and cancels told apart from device failures with who asked,
the model each device went back to, version share over a rollout, and a device's merged timeline."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from helpers.pages import figure, texts
from helpers.seeding import add_module, add_variant, logged_in_client, register_device
from tinymlaas.services.audit import record
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import CampaignRepository, DeviceRepository
from tinymlaas.storage.tables import CampaignRow, InstallationRow, ModelRow

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
LABELS = ["idle", "wave", "circle", "shake"]
ENDPOINTS = ("g-1", "g-2")


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def _changes(*steps: tuple[str, int]) -> list[dict[str, str]]:
    return [{"state": state, "at": _at(minutes).isoformat()} for state, minutes in steps]


def _campaign(
    session: Any, campaign_id: str, module_id: str, state: str, minutes: int, rows: dict[str, dict[str, Any]]
) -> None:
    CampaignRepository(session).add(
        CampaignRow(
            id=campaign_id, module_id=module_id, selector="board:pico",
            plan={"stages": [100], "max_failures": 0, "targets": list(rows)}, state=state, current_stage=0,
            created_at=_at(minutes), updated_at=_at(minutes),
        ),
        [
            InstallationRow(campaign_id=campaign_id, endpoint=endpoint, updated_at=_at(minutes), **fields)
            for endpoint, fields in rows.items()
        ],
    )  # fmt: skip


def _seed(context: Context) -> None:
    """wave v1 on two picos; wave v2 sent to both: g-1 took it and was rolled back by an operator, g-2
    failed its install; a third campaign was cancelled with no request on record."""
    with context.session() as session:
        for version in (1, 2):
            add_variant(session, model_id=f"mdl_v{version}", variant_id=f"var_v{version}", version=version)
            session.get(ModelRow, f"mdl_v{version}").spec = {"labels": LABELS}
            manifest = {"model": {"id": f"mdl_v{version}", "name": "wave", "version": version}}
            add_module(
                session, module_id=f"mod_v{version}", variant_id=f"var_v{version}", board="pico",
                package_blob="1" * 64, manifest=manifest,
            )  # fmt: skip
        devices = DeviceRepository(session)
        for endpoint, result in zip(ENDPOINTS, ("3", "7"), strict=True):
            register_device(devices, endpoint, _at(0), objects=("/3/0", "/9/0", "/26241/0", "/7/0"))
            devices.record_event(endpoint, "registered", {"registration_id": "r1"}, at=_at(0))
            devices.set_reported(
                endpoint,
                board_id="pico",
                installed={"name": "wave", "version": "1", "update_state_text": "installed"},
                telemetry={"last_result": result},
            )
        installed = {"state": "succeeded", "update_result": 2, "detail": {}}
        _campaign(
            session, "cmp_v1", "mod_v1", "completed", 0,
            {e: {**installed, "state_changes": _changes(("pending", 0), ("sent", 1), ("succeeded", 2))}
             for e in ENDPOINTS},
        )  # fmt: skip
        _campaign(
            session, "cmp_v2", "mod_v2", "rolled_back", 10,
            {
                "g-1": {
                    "state": "rolled_back", "update_result": 2,
                    "detail": {"rolled_back_to": "wave v1", "rollback_requested": _at(19).isoformat()},
                    "state_changes": _changes(
                        ("pending", 10), ("sent", 11), ("succeeded", 12), ("rolled_back", 20)
                    ),
                },
                "g-2": {
                    "state": "failed", "update_result": 52, "detail": {"error": "the self-test failed"},
                    "state_changes": _changes(("pending", 10), ("sent", 11), ("failed", 13)),
                },
            },
        )  # fmt: skip
        _campaign(
            session, "cmp_c", "mod_v2", "cancelled", 30,
            {"g-1": {"state": "cancelled", "detail": {},
                     "state_changes": _changes(("pending", 30), ("cancelled", 31))}},
        )  # fmt: skip
        _campaign(
            session, "cmp_done", "mod_v1", "completed", 40,
            {"g-2": {**installed,
                     "state_changes": _changes(("pending", 40), ("sent", 41), ("succeeded", 42))}},
        )  # fmt: skip
    for actor, role, status, outcome in (
        ("token val (tok_v)", "viewer", 403, "denied"),
        ("token olga (tok_o)", "operator", 303, "ok"),
    ):
        record(
            context, actor=actor, role=role, action="dashboard:campaign_rollback_form",
            target="/deployments/cmp_v2/rollback",
            detail={"method": "POST", "path": "/deployments/cmp_v2/rollback", "status": status,
                    "outcome": outcome},
        )  # fmt: skip


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Context:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("story") / "data"))
    _seed(context)
    return context


@pytest.fixture(scope="module")
def viewer(context: Context) -> Iterator[TestClient]:
    with logged_in_client(context, Role.VIEWER) as client:
        yield client


def _row(page: str, endpoint: str) -> str:
    match = re.search(rf'data-testid="installation-row" data-endpoint="{endpoint}">(.*?)</tr>', page, re.S)
    assert match, endpoint
    return match.group(1)


def test_a_rollback_reads_as_the_operators_and_says_which_model_the_device_went_back_to(
    viewer: TestClient,
) -> None:
    page = viewer.get("/deployments/cmp_v2").text
    rolled, failed = _row(page, "g-1"), _row(page, "g-2")
    assert texts(rolled, "installation-cause") == ["operator"]
    assert texts(rolled, "installation-result") == ["back on wave v1 (reported after Uninstall)"]
    assert "(installed)" not in texts(rolled, "installation-result")[0]
    assert 'class="info" data-testid="installation-state"' in rolled
    assert texts(failed, "installation-cause") == ["device"]
    assert 'class="bad" data-testid="installation-state"' in failed
    assert texts(rolled, "installation-now") == ["wave v1 (installed)"]
    (stopped,) = texts(page, "campaign-stopped")
    assert stopped.startswith("Stopped: rollback by token olga (tok_o) (operator) via the dashboard,")
    actions = texts(page, "operator-action")
    assert len(actions) == 2
    assert "token val (tok_v)" in actions[0] and actions[0].endswith("denied")
    assert "token olga (tok_o)" in actions[1] and actions[1].endswith("ok")


def test_version_share_follows_the_recorded_installs_and_rollbacks_to_what_devices_report(
    viewer: TestClient,
) -> None:
    chart = figure(viewer.get("/deployments/cmp_v2").text, "version-share")
    share = {trace["name"]: trace["y"] for trace in chart["data"]}
    # From the campaign's start (both on v1 since cmp_v1), g-1 on v2 at minute 12, back at 20, then now.
    assert share == {"wave v1": [2, 1, 2, 2], "wave v2": [0, 1, 0, 0]}
    times = [datetime.fromisoformat(x).replace(tzinfo=UTC) for x in chart["data"][0]["x"]]
    assert times[:3] == [_at(10), _at(12), _at(20)]


def test_a_cancel_with_no_request_on_record_names_no_one(viewer: TestClient) -> None:
    page = viewer.get("/deployments/cmp_c").text
    assert texts(page, "campaign-stopped") == [
        "Stopped: cancel by an operator with no audit record (the CLI on the server host)."
    ]
    assert texts(page, "no-operator-actions")
    assert texts(_row(page, "g-1"), "installation-cause") == ["operator"]


def test_a_rollback_posted_on_the_dashboard_names_the_person_who_posted_it(context: Context) -> None:
    with logged_in_client(context, Role.OPERATOR, name="ops-olga") as operator:
        asked = operator.post("/deployments/cmp_done/rollback")
        assert asked.status_code == 200 and 'data-testid="campaign-stopped"' not in asked.text
        assert "no audit record" not in operator.get("/deployments/cmp_done").text
        page = operator.post("/deployments/cmp_done/rollback", data={"confirm": "yes"}).text
    (stopped,) = texts(page, "campaign-stopped")
    assert re.match(r"Stopped: rollback by token ops-olga \(\w+\) \(operator\) via the dashboard", stopped)
    asked_row, done_row = texts(page, "operator-action")
    assert asked_row.endswith("asked to confirm") and done_row.endswith("ok")


def test_the_device_timeline_merges_events_installs_and_rollbacks_newest_first(viewer: TestClient) -> None:
    page = viewer.get("/devices/g-1").text
    rows = re.findall(r'data-testid="timeline-row" data-source="(\w+)">(.*?)</tr>', page, re.S)
    steps = [
        (source, texts(row, "step-kind") or texts(row, "event-kind"), texts(row, "timeline-detail"))
        for source, row in rows
    ]
    assert steps[:6] == [
        ("campaign", ["cancelled"], ["not sent: an operator stopped the campaign"]),
        ("campaign", ["pending"], [""]),
        ("campaign", ["rolled_back"], ["rolled back: back on wave v1"]),
        ("campaign", ["succeeded"], ["installed wave v2"]),
        ("campaign", ["sent"], ["sent wave v2"]),
        ("campaign", ["pending"], [""]),
    ]
    assert [kind for source, kind, _ in steps if source == "device"] == [["registered"]]
    assert steps[-1][0] == "campaign" and steps[-1][1] == ["pending"]


def test_the_last_result_reads_as_the_class_the_installed_models_labels_name(viewer: TestClient) -> None:
    assert texts(viewer.get("/devices/g-1").text, "last-result") == ["shake (class 3 of wave v1)"]
    assert texts(viewer.get("/devices/g-2").text, "last-result") == ["class 7 (wave v1 names no class 7)"]


def test_the_object_tree_lists_what_the_device_registered_and_says_there_is_no_server(
    context: Context, viewer: TestClient
) -> None:
    page = viewer.get("/devices/g-1").text
    objects = re.findall(r'data-testid="object" data-path="([^"]+)"', page)
    assert objects == ["/3", "/7", "/9", "/26241"]
    assert "/7</code> an object this server has no definition of" in page
    resources = re.findall(r'data-testid="resource" data-path="(/9/0/\d+)"', page)
    assert "/9/0/6" in resources and "/9/0/7" in resources
    assert texts(page, "no-lwm2m-server")
    assert 'data-testid="read-link"' not in page and 'data-testid="execute"' not in page

    read = viewer.get("/devices/g-1", params={"read": "/9/0"})
    assert read.status_code == 503
    assert "runs no LwM2M server" in texts(read.text, "flash-error")[0]
    with logged_in_client(context, Role.OPERATOR) as operator:
        executed = operator.post("/devices/g-1/execute/9/0/6")
    assert executed.status_code == 503
    assert "cannot execute on devices" in texts(executed.text, "flash-error")[0]
