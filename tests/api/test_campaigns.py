from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tinymlaas.services.auth import Role
from tinymlaas.storage.repositories import DeviceRepository
from tinymlaas.storage.tables import ModelRow, ModuleRow, VariantRow


def test_campaigns_list_filter_and_show(api, problem) -> None:
    listed = api.client.get("/campaigns", headers=api.auth(Role.VIEWER)).json()
    assert "cmp_seed" in [c["id"] for c in listed["data"]]
    shown = api.client.get("/campaigns/cmp_seed", headers=api.auth(Role.VIEWER)).json()
    assert [i["endpoint"] for i in shown["installations"]] == ["dev-a"]
    none = api.client.get("/campaigns", params={"state": "completed"}, headers=api.auth(Role.VIEWER)).json()
    assert "cmp_seed" not in [c["id"] for c in none["data"]]


def test_changes_need_an_operator_or_admin(api, problem) -> None:
    problem(api.client.post("/campaigns/cmp_seed/cancel"), 401)
    for role in (Role.VIEWER, Role.DATA_SCIENTIST):
        problem(api.client.post("/campaigns/cmp_seed/cancel", headers=api.auth(role)), 403)
        body = {"module": "mod_seed", "selector": "board:pico"}
        problem(api.client.post("/campaigns", json=body, headers=api.auth(role)), 403)
    assert api.client.get("/campaigns/cmp_seed", headers=api.auth(Role.VIEWER)).json()["state"] == "running"


def test_create_reaches_the_service_and_reports_its_refusal(api, problem) -> None:
    body = {"module": "mod_seed", "selector": "board:pico"}
    refused = problem(api.client.post("/campaigns", json=body, headers=api.auth(Role.OPERATOR)), 422)
    assert refused["type"] == "urn:tinymlaas:problem:invalid-input"
    assert "mod_seed" in refused["detail"]
    missing = {"module": "mod_missing", "selector": "board:pico"}
    problem(api.client.post("/campaigns", json=missing, headers=api.auth(Role.OPERATOR)), 404)
    bad = {"module": "mod_seed", "stages": [], "max_failures": "many"}
    problem = problem(api.client.post("/campaigns", json=bad, headers=api.auth(Role.OPERATOR)), 422)
    assert {"selector", "stages"} <= {e["field"] for e in problem["errors"]}


def test_an_operator_cancels_and_then_rolls_back(api, problem) -> None:
    cancelled = api.client.post("/campaigns/cmp_seed/cancel", headers=api.auth(Role.OPERATOR))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    assert cancelled.json()["installations"][0]["state"] == "cancelled"
    rolled = api.client.post("/campaigns/cmp_seed/rollback", headers=api.auth(Role.ADMIN))
    assert rolled.status_code == 200, rolled.text
    assert rolled.json()["state"] == "rolled_back"
    problem(api.client.post("/campaigns/cmp_missing/rollback", headers=api.auth(Role.ADMIN)), 404)


MANIFEST = {
    "runtime": "tflm",
    "ops": ["CONV_2D", "FULLY_CONNECTED"],
    "arena_bytes": 20_000,
    "files": {"model.tflite": {"size": 30_000, "sha256": "0" * 64}},
    "model": {"name": "wave", "version": 2},
}


@pytest.fixture
def fitting_module(api) -> Iterator[str]:
    """A built module that fits the pico; dev-a reports what it needs, dev-b a LiteRT runtime.

    Removed again afterwards, so the package-wide store stays as the other API tests expect it.
    """
    with api.context.session() as session:
        session.add(
            ModelRow(id="mdl_preview", name="wave", version=2, origin="imported", arch="cnn", params=10)
        )
        session.flush()
        session.add(
            VariantRow(
                id="var_preview", model_id="mdl_preview", quantization="int8", tflite_blob="1" * 64,
                size_bytes=100, info={"ops": [], "layers": [], "inputs": [], "outputs": []},
                arena_bytes=20_000, arena_tries=1, metrics={}, runtime_errors={}, selftests={},
            )
        )  # fmt: skip
        session.flush()
        session.add(
            ModuleRow(
                id="mod_preview", variant_id="var_preview", board_id="pico", compiler="tflm", runtime="tflm",
                package_blob="2" * 64, manifest=MANIFEST, flash_bytes=30_000, ram_bytes=20_000, fits=True,
                reasons=[],
            )
        )  # fmt: skip
        devices = DeviceRepository(session)
        devices.set_reported("dev-a", capabilities=CAPS)
        devices.set_reported(
            "dev-b", capabilities={**CAPS, "runtime": "litert", "arena_bytes_available": 8_000}
        )
    yield "mod_preview"
    with api.context.session() as session:
        for row_type, key in (
            (ModuleRow, "mod_preview"),
            (VariantRow, "var_preview"),
            (ModelRow, "mdl_preview"),
        ):
            session.delete(session.get(row_type, key))
            session.flush()
        for endpoint in ("dev-a", "dev-b"):
            DeviceRepository(session).set_reported(endpoint, capabilities={})


CAPS = {
    "runtime": "tflm",
    "runtime_version": "1.2",
    "ops": ["CONV_2D", "FULLY_CONNECTED", "SOFTMAX"],
    "arena_bytes_available": 65_536,
    "slot_flash_bytes": 262_144,
}


def test_preview_names_per_device_whether_it_fits_and_stores_nothing(api, fitting_module, problem) -> None:
    before = api.client.get("/campaigns", headers=api.auth(Role.VIEWER)).json()["count"]
    response = api.client.get(
        "/campaigns/preview",
        params={"module": fitting_module, "selector": "dev-b,dev-a"},
        headers=api.auth(Role.VIEWER),
    )
    assert response.status_code == 200, response.text
    preview = response.json()
    assert (preview["board"], preview["targets"], preview["fit"], preview["refused"]) == ("pico", 2, 1, 1)
    assert preview["launchable"] is True
    assert [d["endpoint"] for d in preview["devices"]] == ["dev-b", "dev-a"]  # rollout order kept
    refused, fits = preview["devices"]
    assert fits == {"endpoint": "dev-a", "board": "pico", "online": True, "fits": True, "reasons": []}
    assert refused["fits"] is False
    assert any("runtime mismatch" in r and "'litert'" in r for r in refused["reasons"])
    assert any("tensor arena needs 20000 bytes" in r and "8000" in r for r in refused["reasons"])
    assert api.client.get("/campaigns", headers=api.auth(Role.VIEWER)).json()["count"] == before


def test_preview_refusing_every_device_is_an_answer_not_an_error(api, fitting_module) -> None:
    params = {"module": fitting_module, "selector": "board:rpi4"}
    preview = api.client.get("/campaigns/preview", params=params, headers=api.auth(Role.OPERATOR)).json()
    assert (preview["launchable"], preview["fit"], preview["refused"]) == (False, 0, 1)


def test_preview_rejects_what_create_rejects(api, fitting_module, problem) -> None:
    def preview(**params: str) -> httpx.Response:
        return api.client.get("/campaigns/preview", params=params, headers=api.auth(Role.VIEWER))

    unbuilt = problem(preview(module="mod_seed", selector="board:pico"), 422)
    assert "no package was built" in unbuilt["detail"]
    problem(preview(module="mod_missing", selector="board:pico"), 404)
    assert "nobody" in problem(preview(module=fitting_module, selector="dev-a,nobody"), 422)["detail"]
    assert "esp32s3" in problem(preview(module=fitting_module, selector="board:esp32s3"), 422)["detail"]
    missing = problem(preview(module=fitting_module), 422)
    assert [e["field"] for e in missing["errors"]] == ["selector"]
    problem(api.client.get("/campaigns/preview", params={"module": fitting_module, "selector": "dev-a"}), 401)
