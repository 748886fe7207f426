"""The Deployments pages: the wizard's gate check, launching, and cancel / rollback through the page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from helpers.pages import figure, texts
from helpers.seeding import add_campaign, add_module, add_variant, logged_in_client, register_device
from tinymlaas.deploy.campaigns import InstallationState
from tinymlaas.services.auth import Role
from tinymlaas.services.campaigns import (
    campaign_value,
    create_campaign,
    list_campaigns,
    show_campaign,
    store_campaign,
)
from tinymlaas.services.context import Context
from tinymlaas.services.modules import show_module
from tinymlaas.settings import Settings
from tinymlaas.storage.repositories import CampaignRepository, DeviceRepository

NOW = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
CAPS = {
    "runtime": "tflm",
    "runtime_version": "1.2",
    "ops": ["CONV_2D", "FULLY_CONNECTED"],
    "arena_bytes_available": 65_536,
    "slot_flash_bytes": 262_144,
}


def _manifest(arena: int) -> dict[str, object]:
    return {
        "runtime": "tflm",
        "ops": ["CONV_2D"],
        "arena_bytes": arena,
        "files": {"model.tflite": {"size": 20_000, "sha256": "0" * 64}},
        "model": {"name": "wave", "version": 1},
    }


def _seed(context: Context) -> None:
    """Three pico modules (one the devices can run, one whose arena they lack, one that does not fit
    its board), two picos and a Raspberry Pi, a running campaign and a completed one."""
    with context.session() as session:
        add_variant(session, model_id="mdl_d", variant_id="var_d")
        for module_id, arena, fits in (
            ("mod_ok", 20_000, True),
            ("mod_big", 1_000_000, True),
            ("mod_unfit", 0, False),
        ):
            add_module(
                session, module_id=module_id, variant_id="var_d", board="pico",
                package_blob="1" * 64 if fits else None, manifest=_manifest(arena) if fits else None,
                flash_bytes=20_000, ram_bytes=arena, fits=fits,
                reasons=[] if fits else ["needs 3,000,000 bytes of flash, the board has 2,000,000"],
            )  # fmt: skip
        devices = DeviceRepository(session)
        for endpoint, board, caps in (
            ("pico-1", "pico", CAPS),
            ("pico-2", "pico", CAPS),
            ("pi-1", "rpi4", {**CAPS, "runtime": "litert"}),
        ):
            register_device(devices, endpoint, NOW)
            devices.set_reported(endpoint, board_id=board, capabilities=caps)
        for campaign_id, state, installation in (
            ("cmp_run", "running", "pending"),
            ("cmp_done", "completed", "succeeded"),
        ):
            add_campaign(
                session, campaign_id=campaign_id, module_id="mod_ok", selector="pico-2", endpoint="pico-2",
                state=state, installation=installation, at=NOW,
            )  # fmt: skip


@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Context:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("web") / "data"))
    _seed(context)
    return context


@pytest.fixture(scope="module")
def operator(context: Context) -> Iterator[TestClient]:
    with logged_in_client(context, Role.OPERATOR) as client:
        yield client


@pytest.fixture(scope="module")
def viewer(context: Context) -> Iterator[TestClient]:
    with logged_in_client(context, Role.VIEWER) as client:
        yield client


def check(client: TestClient, **params: str) -> tuple[int, str]:
    response = client.get("/deployments", params=params)
    return response.status_code, response.text


def test_the_wizard_offers_modules_with_their_fit_and_lists_campaigns(operator: TestClient) -> None:
    page = operator.get("/deployments", params={"model": "mdl_d", "step": "model"}).text
    module_select = re.search(r'<select name="module"[^>]*>(.*?)</select>', page, re.S)
    assert module_select is not None
    offered = re.findall(r'<option value="([^"]+)"', module_select.group(1))
    assert sorted(offered) == ["mod_big", "mod_ok"]  # a module that does not fit is not offered
    unfit = next(row for row in texts(page, "module-row") if row.startswith("mod_unfit"))
    assert "needs 3,000,000 bytes of flash" in unfit
    campaigns = dict(
        re.findall(r'data-campaign="([^"]+)">.*?data-testid="campaign-state">([^<]+)<', page, re.S)
    )
    assert campaigns == {"cmp_run": "running", "cmp_done": "completed"}
    assert 'id="live" data-poll' in page  # cmp_run is under way


def test_check_shows_every_device_refused_with_the_gate_reason(operator: TestClient) -> None:
    status, page = check(operator, module="mod_big", selector="board:pico", stages="100", max_failures="0")
    assert status == 200
    assert re.findall(r'data-testid="preview-row" data-endpoint="([^"]+)"', page) == ["pico-1", "pico-2"]
    assert texts(page, "preview-verdict") == ["refused", "refused"]
    for reasons in texts(page, "preview-reasons"):
        assert "the tensor arena needs 1000000 bytes but the device has 65536 bytes available" in reasons
    assert 'data-testid="preview-refused"' in page
    assert 'data-testid="launch"' not in page


def test_check_then_launch_creates_the_campaign(context: Context, operator: TestClient) -> None:
    status, page = check(operator, module="mod_ok", selector="pico-1,pi-1", stages="50,100", max_failures="1")
    assert status == 200
    assert texts(page, "preview-verdict") == ["fits", "refused"]
    assert "runtime mismatch" in texts(page, "preview-reasons")[1]
    form = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', page))
    assert form == {
        "csrf_token": operator.headers["X-CSRF-Token"],
        "model": "mdl_d",
        "module": "mod_ok",
        "selector": "pico-1,pi-1",
        "stages": "50,100",
        "max_failures": "1",
        "allow_degraded": "",
    }
    before = {c.id for c in list_campaigns(context)}

    launched = operator.post("/deployments", data=form, follow_redirects=False)
    assert launched.status_code == 303, launched.text
    (created,) = {c.id for c in list_campaigns(context)} - before
    assert launched.headers["location"] == f"/deployments/{created}"
    stored = show_campaign(context, created)
    assert (stored.stages, stored.max_failures) == ([50, 100], 1)
    assert {i.endpoint: i.state for i in stored.installations} == {
        "pico-1": "pending",
        "pi-1": "refused",
    }

    page = operator.get(launched.headers["location"]).text
    assert texts(page, "campaign-state") == ["running"]
    assert texts(page, "stage-status") == ["sending", "waiting"]
    rows = re.findall(r'data-testid="installation-row" data-endpoint="([^"]+)"', page)
    assert rows == ["pico-1", "pi-1"]
    assert texts(page, "installation-state") == ["pending", "refused"]
    assert 'id="live" data-poll' in page


def test_bad_plan_fields_are_named_and_nothing_is_stored(context: Context, operator: TestClient) -> None:
    before = len(list_campaigns(context))
    status, page = check(operator, module="mod_ok", selector="board:pico", stages="10,x", max_failures="0")
    assert status == 422 and "'10,x'" in texts(page, "flash-error")[0]
    bad = {"module": "mod_ok", "selector": "board:pico", "stages": "50,90", "max_failures": "0"}
    refused = operator.post("/deployments", data=bad)
    assert refused.status_code == 422
    assert "last stage must be 100 percent" in texts(refused.text, "flash-error")[0]
    status, page = check(operator, module="mod_ok", selector="board:esp32s3", stages="100", max_failures="0")
    assert status == 422 and "esp32s3" in texts(page, "flash-error")[0]
    assert len(list_campaigns(context)) == before


def test_a_viewer_may_check_but_gets_403_on_the_launch_form(context: Context, viewer: TestClient) -> None:
    status, page = check(viewer, module="mod_ok", selector="pico-1", stages="100", max_failures="0")
    assert status == 200 and texts(page, "preview-verdict") == ["fits"]
    assert 'data-testid="launch"' not in page
    before = len(list_campaigns(context))
    form = {"module": "mod_ok", "selector": "pico-1", "stages": "100", "max_failures": "0"}
    denied = viewer.post("/deployments", data=form)
    assert denied.status_code == 403 and "deployments:write" in denied.text
    assert viewer.post("/deployments/cmp_run/cancel").status_code == 403
    assert len(list_campaigns(context)) == before
    assert 'data-testid="cancel"' not in viewer.get("/deployments/cmp_run").text


def test_cancel_through_the_page_stops_the_campaign(context: Context, operator: TestClient) -> None:
    assert 'data-testid="cancel"' in operator.get("/deployments/cmp_run").text
    asked = operator.post("/deployments/cmp_run/cancel", follow_redirects=False)
    assert asked.status_code == 200 and texts(asked.text, "confirm-title") == ["Cancel this campaign?"]
    assert texts(asked.text, "confirm-affected") == ["1 device that will not be sent the module: pico-2."]
    assert show_campaign(context, "cmp_run").state == "running"  # asking changed nothing
    confirm = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', asked.text))
    assert confirm == {"csrf_token": operator.headers["X-CSRF-Token"], "confirm": "yes"}
    cancelled = operator.post("/deployments/cmp_run/cancel", data=confirm, follow_redirects=False)
    assert cancelled.status_code == 303 and cancelled.headers["location"] == "/deployments/cmp_run"
    assert show_campaign(context, "cmp_run").state == "cancelled"
    page = operator.get("/deployments/cmp_run").text
    assert texts(page, "campaign-state") == ["cancelled"]
    assert texts(page, "installation-state") == ["cancelled"]
    assert '<div id="live">' in page  # no data-poll: nothing changes any more by itself
    again = operator.post("/deployments/cmp_run/cancel", data={"confirm": "yes"})
    assert again.status_code == 409 and "cannot become cancelled" in texts(again.text, "flash-error")[0]


def test_rollback_through_the_page_starts_reverting(context: Context, operator: TestClient) -> None:
    asked = operator.post("/deployments/cmp_done/rollback", follow_redirects=False)
    assert asked.status_code == 200 and texts(asked.text, "confirm-title") == ["Roll this campaign back?"]
    assert texts(asked.text, "confirm-affected") == [
        "1 device that will go back to their previous model: pico-2."
    ]
    assert show_campaign(context, "cmp_done").state == "completed"  # asking changed nothing
    assert 'name="confirm" value="yes"' in asked.text and 'data-testid="confirm-back"' in asked.text
    rolled = operator.post("/deployments/cmp_done/rollback", data={"confirm": "yes"}, follow_redirects=False)
    assert rolled.status_code == 303
    assert show_campaign(context, "cmp_done").state == "rolling_back"
    page = operator.get("/deployments/cmp_done").text
    assert texts(page, "campaign-state") == ["rolling_back"]
    assert 'id="live" data-poll' in page  # the runner reverts the device that succeeded


def test_an_unknown_campaign_is_404(operator: TestClient) -> None:
    assert operator.get("/deployments/cmp_missing").status_code == 404
    assert operator.post("/deployments/cmp_missing/rollback").status_code == 404


def _move(context: Context, campaign_id: str, endpoint: str, state: InstallationState, at: datetime) -> None:
    """One device's report applied the way the campaign runner applies it."""
    with context.session() as session:
        repository = CampaignRepository(session)
        row = repository.campaign(campaign_id)
        installations = repository.installations(campaign_id)
        store_campaign(row, installations, campaign_value(row, installations).record(endpoint, state), at)


def _module_name(context: Context, module_id: str) -> str:
    """What the pages should call a module, read from the stored lineage."""
    module = show_module(context, module_id)
    model = module["model"]
    return f"{model['name']} v{model['version']} · {module['quantization']} · {module['board']}"


_MICROSECONDS = re.compile(r"\d{2}:\d{2}:\d{2}\.\d")


def test_campaigns_are_listed_by_the_module_s_human_name(context: Context, viewer: TestClient) -> None:
    page = viewer.get("/deployments").text
    campaigns = list_campaigns(context)
    rows = re.findall(
        r'data-campaign="([^"]+)">.*?data-testid="campaign-module" title="([^"]+)">([^<]+)<', page, re.S
    )
    assert [(c, module, name) for c, module, name in rows] == [
        (c.id, c.module, _module_name(context, c.module)) for c in campaigns
    ]
    assert not _MICROSECONDS.search(page)
    for c in campaigns:
        assert f'title="{datetime.fromisoformat(c.created_at).replace(microsecond=0).isoformat()}"' in page


def test_the_rollout_timeline_counts_the_stored_installations(context: Context, operator: TestClient) -> None:
    created = create_campaign(context, "mod_ok", "board:pico", (100,), 1)
    start = datetime.fromisoformat(created.created_at)
    for seconds, endpoint, state in (
        (1, "pico-1", InstallationState.SENT),
        (1, "pico-2", InstallationState.SENT),
        (2, "pico-1", InstallationState.DOWNLOADING),
        (3, "pico-1", InstallationState.INSTALLING),
        (4, "pico-2", InstallationState.DOWNLOADING),
        (5, "pico-1", InstallationState.SUCCEEDED),
    ):
        _move(context, created.id, endpoint, state, start + timedelta(seconds=seconds))
    stored = show_campaign(context, created.id)
    with context.session() as session:
        changes = [
            (change["at"], change["state"])
            for installation in CampaignRepository(session).installations(created.id).values()
            for change in installation.state_changes
        ]
    assert sorted(state for _, state in changes) == sorted(
        ["pending", "pending", "sent", "sent", "downloading", "installing", "downloading", "succeeded"]
    )

    page = operator.get(f"/deployments/{created.id}").text
    chart = figure(page, "rollout-timeline")
    traces = {trace["name"]: trace["y"] for trace in chart["data"]}
    assert list(traces) == [s.value for s in InstallationState if s.value in {state for _, state in changes}]
    assert {state: counts[-1] for state, counts in traces.items() if counts[-1]} == stored.counts
    assert set(texts(page, "timeline-final")) == {f"{state} {n}" for state, n in stored.counts.items()}
    times = chart["data"][0]["x"]
    recorded = sorted({datetime.fromisoformat(at).strftime("%Y-%m-%d %H:%M:%S") for at, _ in changes})
    assert times[: len(recorded)] == recorded
    # Two seconds in, pico-1 was downloading while pico-2 still waited to report after its send.
    two = times.index((start + timedelta(seconds=2)).strftime("%Y-%m-%d %H:%M:%S"))
    assert {state: counts[two] for state, counts in traces.items() if counts[two]} == {
        "sent": 1,
        "downloading": 1,
    }
    assert texts(page, "campaign-module") == [_module_name(context, "mod_ok")]
    assert not _MICROSECONDS.search(page)
    assert "." in stored.created_at  # the page had microseconds to drop


def test_a_campaign_stored_without_state_changes_is_charted_from_its_timestamps(
    context: Context, viewer: TestClient
) -> None:
    sent, finished = NOW + timedelta(minutes=1), NOW + timedelta(minutes=3)
    with context.session() as session:
        add_campaign(
            session, campaign_id="cmp_before", module_id="mod_ok", selector="pico-1", endpoint="pico-1",
            state="completed", installation="succeeded", at=NOW, started_at=sent, finished_at=finished,
        )  # fmt: skip
    chart = figure(viewer.get("/deployments/cmp_before").text, "rollout-timeline")
    assert chart["data"][0]["x"] == [t.strftime("%Y-%m-%d %H:%M:%S") for t in (NOW, sent, finished)]
    assert {trace["name"]: trace["y"] for trace in chart["data"]} == {
        "pending": [1, 0, 0],
        "sent": [0, 1, 0],
        "succeeded": [0, 0, 1],
    }
