"""Compiled modules over HTTP: listings, fit reports against the board, and package downloads."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator

import pytest

from helpers.servers import SEEDED_ARENA_BYTES, Api, Seeded, seed_artifacts, serve
from tinymlaas.deploy.package import verify_package
from tinymlaas.deploy.signing import load_or_create_signing_key
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.models import show_model
from tinymlaas.settings import Settings


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, tiny_models) -> Iterator[tuple[Api, Seeded]]:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("modules") / "data"))
    artifacts = seed_artifacts(context, tiny_models)
    with serve(context) as api:
        yield api, artifacts


def _get(api: Api, path: str, **params: str) -> dict:
    response = api.client.get(path, params=params, headers=api.auth(Role.VIEWER))
    assert response.status_code == 200, response.text
    return response.json()


def test_modules_are_listed_and_filtered_by_board_and_fit(seeded) -> None:
    api, artifacts = seeded
    listed = _get(api, "/modules")
    assert listed["count"] == 2
    assert [m["id"] for m in listed["data"]] == [artifacts.too_big_module, artifacts.fitting_module]
    assert {m["model"]["id"] for m in listed["data"]} == {artifacts.model}
    assert {m["quantization"] for m in listed["data"]} == {"int8"}
    assert [m["id"] for m in _get(api, "/modules", board="pico")["data"]] == [artifacts.too_big_module]
    assert [m["id"] for m in _get(api, "/modules", fits="true")["data"]] == [artifacts.fitting_module]
    assert [m["id"] for m in _get(api, "/modules", fits="false", board="pico")["data"]] == [
        artifacts.too_big_module
    ]
    assert _get(api, "/modules", board="rpi4") == {"data": [], "count": 0}
    assert len(_get(api, "/modules", limit="1")["data"]) == 1


def test_a_module_shows_its_manifest(seeded) -> None:
    api, artifacts = seeded
    module = _get(api, f"/modules/{artifacts.fitting_module}")
    assert module["board"] == "nucleo-l4r5zi" and module["fits"] is True and module["reasons"] == []
    assert module["manifest"]["board"] == "nucleo-l4r5zi"
    assert module["manifest"]["arena_bytes"] >= SEEDED_ARENA_BYTES


def test_the_fit_report_sets_needs_against_the_board_check_by_check(seeded) -> None:
    api, artifacts = seeded
    bad = _get(api, f"/modules/{artifacts.too_big_module}/fit")
    assert bad["fits"] is False and bad["board"] == "pico"
    assert bad["usable_ram_bytes"] == 245_760 and bad["usable_flash_bytes"] == 1_966_080
    checks = {c["check"]: c for c in bad["checks"]}
    assert set(checks) == {"runtime", "ops", "runs", "flash", "ram", "package"}
    assert checks["ram"]["passed"] is False
    assert checks["ram"]["needed_bytes"] == bad["ram_bytes"] > bad["usable_ram_bytes"]
    assert "RAM" in checks["ram"]["reason"] and "240.0 KiB" in checks["ram"]["reason"]
    assert checks["flash"]["passed"] is True and checks["flash"]["needed_bytes"] == bad["flash_bytes"]
    assert checks["runtime"]["passed"] and checks["ops"]["passed"] and checks["package"]["passed"]
    # The seeded variant recorded no self-test run, so whether it ran is unknown rather than passed.
    assert checks["runs"]["passed"] is None
    assert any("RAM" in reason for reason in bad["reasons"])

    good = _get(api, f"/modules/{artifacts.fitting_module}/fit")
    assert good["fits"] is True and good["reasons"] == []
    assert all(c["passed"] is not False for c in good["checks"])
    assert good["ram_bytes"] <= good["usable_ram_bytes"]


def test_the_signed_package_is_what_a_device_verifies(seeded, problem) -> None:
    api, artifacts = seeded
    response = api.client.get(f"/modules/{artifacts.fitting_module}/package", headers=api.auth(Role.VIEWER))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-disposition"] == (
        f'attachment; filename="{artifacts.fitting_module}-nucleo-l4r5zi-signed.zip"'
    )
    key = load_or_create_signing_key(api.context.settings.keys_dir)
    package = verify_package(response.content, key.public_key_bytes(), max_bytes=10 * 1024 * 1024)
    assert package.manifest["board"] == "nucleo-l4r5zi"
    # Each download is signed anew with the next sequence of its model line, so a device that took the
    # first still takes the second, and would refuse the first again.
    again = api.client.get(f"/modules/{artifacts.fitting_module}/package", headers=api.auth(Role.VIEWER))
    second = verify_package(again.content, key.public_key_bytes(), max_bytes=10 * 1024 * 1024)
    assert second.manifest["sequence"] > package.manifest["sequence"]
    assert {k: v for k, v in second.manifest.items() if k != "sequence"} == {
        k: v for k, v in package.manifest.items() if k != "sequence"
    }


def test_the_unsigned_module_is_the_stored_bytes_even_when_it_does_not_fit(seeded, problem) -> None:
    api, artifacts = seeded
    stored = next(
        m.package
        for m in show_model(api.context, artifacts.model).modules
        if m.id == artifacts.too_big_module
    )
    response = api.client.get(
        f"/modules/{artifacts.too_big_module}/package",
        params={"signed": "false"},
        headers=api.auth(Role.VIEWER),
    )
    assert response.status_code == 200
    assert response.content == api.context.blobs.get(stored)
    assert response.headers["content-disposition"].endswith('-pico-unsigned.zip"')
    assert "manifest.sig" not in zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    refused = problem(
        api.client.get(f"/modules/{artifacts.too_big_module}/package", headers=api.auth(Role.VIEWER)), 409
    )
    assert "does not fit pico" in refused["detail"]


def test_modules_need_a_token_and_unknown_ones_are_404(seeded, problem) -> None:
    api, artifacts = seeded
    for path in (
        "/modules",
        f"/modules/{artifacts.fitting_module}",
        f"/modules/{artifacts.fitting_module}/fit",
    ):
        problem(api.client.get(path), 401)
    for suffix in ("", "/fit", "/package"):
        problem(api.client.get(f"/modules/mod_missing{suffix}", headers=api.auth(Role.VIEWER)), 404)
    problem(api.client.get("/modules", params={"fits": "maybe"}, headers=api.auth(Role.VIEWER)), 422)
