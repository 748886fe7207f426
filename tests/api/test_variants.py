"""Variants over HTTP: the measured report, the exact .tflite bytes, and compiling one as a job."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from helpers.servers import Api, Seeded, seed_artifacts, serve
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings


@pytest.fixture(scope="module")
def seeded(tmp_path_factory, tiny_models) -> Iterator[tuple[Api, Seeded]]:
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("variants") / "data"))
    artifacts = seed_artifacts(context, tiny_models)
    with serve(context) as api:
        yield api, artifacts


def test_a_variant_shows_its_layers_ops_and_metric_next_to_the_float_one(seeded) -> None:
    api, artifacts = seeded
    variant = api.client.get(f"/variants/{artifacts.variant}", headers=api.auth(Role.VIEWER)).json()
    assert variant["quantization"] == "int8"
    assert variant["size_bytes"] == len(artifacts.tflite)
    assert variant["metrics"]["tflm"] == {"name": "accuracy", "value": 0.875}
    assert variant["float_metric"] == {"name": "accuracy", "value": 0.9}
    assert (variant["model_name"], variant["model_version"]) == ("tiny", 1)
    assert "CONV_2D" in variant["ops"] or "FULLY_CONNECTED" in variant["ops"]
    assert [layer["op"] for layer in variant["layers"]]
    assert variant["params"] == sum(layer["params"] for layer in variant["layers"])
    assert {m["board"] for m in variant["modules"]} == {"pico", "nucleo-l4r5zi"}
    assert variant["inputs"][0]["shape"][1:] == [32, 3]


def test_the_tflite_download_is_the_stored_bytes(seeded, problem) -> None:
    api, artifacts = seeded
    response = api.client.get(f"/variants/{artifacts.variant}/tflite", headers=api.auth(Role.VIEWER))
    assert response.status_code == 200
    assert response.content == artifacts.tflite
    assert response.headers["content-type"] == "application/octet-stream"
    assert (
        response.headers["content-disposition"] == f'attachment; filename="{artifacts.variant}-int8.tflite"'
    )
    problem(api.client.get(f"/variants/{artifacts.variant}/tflite"), 401)
    problem(api.client.get("/variants/var_missing/tflite", headers=api.auth(Role.VIEWER)), 404)


def test_compiling_a_variant_queues_a_compile_job(seeded, problem) -> None:
    api, artifacts = seeded
    url = f"/variants/{artifacts.variant}/compile"
    response = api.client.post(url, json={"board": "esp32s3"}, headers=api.auth(Role.DATA_SCIENTIST))
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["kind"] == "compile" and job["state"] == "queued"
    assert job["params"] == {"variant": artifacts.variant, "board": "esp32s3"}
    with_runtime = api.client.post(
        url, json={"board": "rpi4", "runtime": "litert"}, headers=api.auth(Role.ADMIN)
    ).json()
    assert with_runtime["params"]["runtime"] == "litert"

    assert (
        "toaster"
        in problem(api.client.post(url, json={"board": "toaster"}, headers=api.auth(Role.ADMIN)), 422)[
            "detail"
        ]
    )
    assert (
        "litert"
        in problem(
            api.client.post(url, json={"board": "pico", "runtime": "litert"}, headers=api.auth(Role.ADMIN)),
            422,
        )["detail"]
    )
    native = api.client.post(
        url, json={"board": "nano33ble", "compiler": "native"}, headers=api.auth(Role.ADMIN)
    ).json()
    assert native["params"]["compiler"] == "native"
    for body, named in (
        ({"board": "nano33ble", "compiler": "gcc"}, "compiler: No compiler plugin named 'gcc'"),
        ({"board": "esp32s3", "compiler": "native"}, "esp32s3 does not run 'native'"),
        ({"board": "pico", "compiler": "n" * 65}, "compiler"),
    ):
        assert named in str(problem(api.client.post(url, json=body, headers=api.auth(Role.ADMIN)), 422))
    problem(api.client.post(url, json={}, headers=api.auth(Role.ADMIN)), 422)
    problem(
        api.client.post(
            "/variants/var_missing/compile", json={"board": "pico"}, headers=api.auth(Role.ADMIN)
        ),
        404,
    )
    assert (
        "models:write"
        in problem(api.client.post(url, json={"board": "pico"}, headers=api.auth(Role.OPERATOR)), 403)[
            "detail"
        ]
    )
    problem(api.client.post(url, json={"board": "pico"}), 401)


def test_an_unknown_variant_is_404(seeded, problem) -> None:
    api, _ = seeded
    problem(api.client.get("/variants/var_missing", headers=api.auth(Role.VIEWER)), 404)
    problem(api.client.get("/variants/var_missing"), 401)
