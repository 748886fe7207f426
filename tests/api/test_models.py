from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest

from helpers.servers import SEEDED_ARENA_BYTES, Api, Seeded, seed_artifacts, serve
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.settings import Settings

UPLOAD_LIMIT = 64 * 1024


def test_models_list_filter_and_show_with_lineage(api, problem) -> None:
    listed = api.client.get("/models", headers=api.auth(Role.VIEWER)).json()
    assert [m["id"] for m in listed["data"]] == ["mdl_seed"]
    assert api.client.get("/models", params={"name": "other"}, headers=api.auth(Role.VIEWER)).json() == {
        "data": [],
        "count": 0,
    }
    shown = api.client.get("/models/mdl_seed", headers=api.auth(Role.VIEWER)).json()
    assert [v["id"] for v in shown["variants"]] == ["var_seed"]
    assert [m["id"] for m in shown["modules"]] == ["mod_seed"]


def test_models_need_a_token_and_unknown_ones_are_404(api, problem) -> None:
    problem(api.client.get("/models"), 401)
    problem(api.client.get("/models/mdl_missing", headers=api.auth(Role.VIEWER)), 404)
    problem(api.client.get("/models", params={"offset": -1}, headers=api.auth(Role.VIEWER)), 422)


@pytest.fixture(scope="module")
def own(tmp_path_factory, tiny_models) -> Iterator[tuple[Api, Seeded]]:
    """A store of this module's own (imports add models), with a small upload limit."""
    data_dir = tmp_path_factory.mktemp("models") / "data"
    context = Context(Settings(data_dir=data_dir, max_upload_bytes=UPLOAD_LIMIT))
    artifacts = seed_artifacts(context, tiny_models)
    windows = data_dir.parent / "windows.npz"
    np.savez(windows, x=tiny_models.x_test, y=tiny_models.y_test)
    DatasetService(context).import_path("windows", windows)
    with serve(context) as api:
        yield api, artifacts


def _upload(
    api: Api, file: str, data: bytes, role: Role = Role.DATA_SCIENTIST, **form: str
) -> httpx.Response:
    return api.client.post("/models/imports", files={"file": (file, data)}, data=form, headers=api.auth(role))


def test_a_tflite_brought_in_with_its_dataset_is_measured_like_ours(own, tiny_models) -> None:
    api, _ = own
    response = _upload(api, "../../my model.tflite", tiny_models.int8, dataset="windows", name="byo")
    assert response.status_code == 201, response.text
    model = response.json()
    assert (model["name"], model["version"], model["origin"]) == ("byo", 1, "imported")
    assert model["source_file"] == "my_model.tflite"
    [variant] = model["variants"]
    assert variant["quantization"] == "int8" and variant["size_bytes"] == len(tiny_models.int8)
    assert variant["arena_bytes"] > 0
    assert variant["metrics"]["tflm"]["name"] == "accuracy" and variant["metrics"]["tflm"]["value"] > 0.5
    download = api.client.get(f"/variants/{variant['id']}/tflite", headers=api.auth(Role.VIEWER))
    assert download.content == tiny_models.int8
    shown = api.client.get("/models/byo", headers=api.auth(Role.VIEWER)).json()
    assert shown["source_file"] == "my_model.tflite" and shown["run"]["snapshot"]
    assert not list((api.context.settings.uploads_dir).iterdir())


def test_a_model_upload_that_is_too_big_or_of_another_kind_is_refused(own, tiny_models, problem) -> None:
    api, _ = own
    before = api.client.get("/models", headers=api.auth(Role.VIEWER)).json()["count"]
    too_big = problem(_upload(api, "big.tflite", b"TFL3" * (UPLOAD_LIMIT // 4 + 1)), 413)
    assert "big.tflite" in too_big["detail"]
    assert ".tflite" in problem(_upload(api, "model.onnx", tiny_models.int8), 422)["detail"]
    assert ".keras" in problem(_upload(api, "weights.h5", b"\x89HDF\r\n"), 422)["detail"]
    problem(_upload(api, "empty.tflite", b""), 422)
    unreadable = problem(_upload(api, "noise.tflite", b"0123456789abcdef" * 8), 415)
    assert "noise.tflite" in unreadable["detail"] and "/uploads/" not in unreadable["detail"]
    mismatch = problem(_upload(api, "m.tflite", tiny_models.int8, dataset="gestures"), 422)
    assert "shape" in mismatch["detail"] and "/uploads/" not in mismatch["detail"]
    assert "nope" in problem(_upload(api, "m.tflite", tiny_models.int8, dataset="nope"), 404)["detail"]
    assert (
        "models:write" in problem(_upload(api, "m.tflite", tiny_models.int8, role=Role.VIEWER), 403)["detail"]
    )
    problem(api.client.post("/models/imports", files={"file": ("m.tflite", tiny_models.int8)}), 401)
    assert api.client.get("/models", headers=api.auth(Role.VIEWER)).json()["count"] == before
    assert not list((api.context.settings.uploads_dir).iterdir())


def test_squeezing_a_model_queues_a_squeeze_job(own, tiny_models, problem) -> None:
    api, artifacts = own
    url = f"/models/{artifacts.model}/squeeze"
    everything = api.client.post(url, headers=api.auth(Role.DATA_SCIENTIST))
    assert everything.status_code == 202, everything.text
    assert everything.json()["kind"] == "squeeze" and everything.json()["params"] == {
        "model": artifacts.model
    }
    by_name = api.client.post(
        "/models/tiny:1/squeeze", json={"quantizations": ["int8"]}, headers=api.auth(Role.ADMIN)
    )
    assert by_name.json()["params"] == {"model": artifacts.model, "quantizations": ["int8"]}

    assert (
        "int4"
        in problem(api.client.post(url, json={"quantizations": ["int4"]}, headers=api.auth(Role.ADMIN)), 422)[
            "detail"
        ]
    )
    # A .tflite brought in without a dataset is measured (arena, no metric) and is already a variant.
    imported = _upload(api, "as-is.tflite", tiny_models.int8).json()
    assert imported["variants"][0]["metrics"] == {} and imported["variants"][0]["arena_bytes"] > 0
    assert (
        "already a variant"
        in problem(api.client.post(f"/models/{imported['id']}/squeeze", headers=api.auth(Role.ADMIN)), 422)[
            "detail"
        ]
    )
    problem(api.client.post("/models/mdl_missing/squeeze", headers=api.auth(Role.ADMIN)), 404)
    assert "models:write" in problem(api.client.post(url, headers=api.auth(Role.OPERATOR)), 403)["detail"]
    problem(api.client.post(url), 401)


def test_a_models_variants_are_listed_with_their_measured_figures(own, problem) -> None:
    api, artifacts = own
    listed = api.client.get(f"/models/{artifacts.model}/variants", headers=api.auth(Role.VIEWER)).json()
    assert listed["count"] == 1
    [variant] = listed["data"]
    assert variant["id"] == artifacts.variant and variant["arena_bytes"] == SEEDED_ARENA_BYTES
    assert variant["metrics"] == {"tflm": {"name": "accuracy", "value": 0.875}}
    problem(api.client.get("/models/mdl_missing/variants", headers=api.auth(Role.VIEWER)), 404)
    problem(api.client.get(f"/models/{artifacts.model}/variants"), 401)
