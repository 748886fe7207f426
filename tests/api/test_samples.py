from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image

from helpers.servers import Api, serve
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.settings import Settings

_LIMIT = 2048  # bytes an upload may be on the small server


def _stored(api, sample: dict) -> np.ndarray:
    return np.load(io.BytesIO(api.context.blobs.get(sample["content_sha256"])), allow_pickle=False)


def _png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def _generate(api, name: str, generator: str, samples: int) -> list[dict]:
    body = {"name": name, "generator": generator, "samples": samples, "seed": 5}
    assert api.client.post("/datasets", json=body, headers=api.auth(Role.DATA_SCIENTIST)).status_code == 201
    listed = api.client.get(f"/datasets/{name}/samples", headers=api.auth(Role.VIEWER)).json()
    assert listed["count"] == samples
    return listed["data"]


@pytest.fixture(scope="module")
def gestures(api) -> list[dict]:
    return _generate(api, "api-gestures", "gestures", 30)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Iterator[Api]:
    """A second real server whose uploads may be at most ``_LIMIT`` bytes."""
    context = Context(Settings(data_dir=tmp_path_factory.mktemp("small") / "data", max_upload_bytes=_LIMIT))
    with serve(context) as api:
        yield api


def test_samples_are_listed_page_by_page_with_filters(api, gestures, problem) -> None:
    viewer = api.auth(Role.VIEWER)
    first = api.client.get("/datasets/api-gestures/samples?limit=7", headers=viewer).json()
    second = api.client.get("/datasets/api-gestures/samples?limit=7&offset=7", headers=viewer).json()
    assert first["count"] == second["count"] == 30
    assert [s["id"] for s in first["data"] + second["data"]] == [s["id"] for s in gestures[:14]]
    assert (
        first["data"][0]["source"].startswith("generator:gestures#")
        and first["data"][0]["origin"] == "generated"
    )
    waves = api.client.get("/datasets/api-gestures/samples?label=wave", headers=viewer).json()
    assert waves["count"] == sum(1 for s in gestures if s["label"] == "wave") > 0
    assert {s["label"] for s in waves["data"]} == {"wave"}
    imported = api.client.get("/datasets/api-gestures/samples?origin=imported", headers=viewer).json()
    assert imported == {"data": [], "count": 0}
    bad = api.client.get("/datasets/api-gestures/samples?origin=stolen&limit=0", headers=viewer)
    assert {e["field"] for e in problem(bad, 422)["errors"]} == {"origin", "limit"}
    both = api.client.get("/datasets/api-gestures/samples?label=wave&unlabelled=true", headers=viewer)
    assert "not both" in problem(both, 422)["detail"]


def test_one_sample_and_its_preview(api, gestures) -> None:
    viewer = api.auth(Role.VIEWER)
    sample = gestures[0]
    assert api.client.get(f"/datasets/api-gestures/samples/{sample['id']}", headers=viewer).json() == sample
    preview = api.client.get(f"/datasets/api-gestures/samples/{sample['id']}/preview", headers=viewer)
    assert preview.headers["content-type"] == "application/json"
    body = preview.json()
    assert body["kind"] == "series" and body["shape"] == [64, 3] and body["values"] is None
    assert np.allclose(np.array(body["channels"]).T, _stored(api, sample))

    digits = _generate(api, "api-digits", "digits", 10)
    image = api.client.get(f"/datasets/api-digits/samples/{digits[0]['id']}/preview?size=32", headers=viewer)
    assert image.headers["content-type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(image.content)))
    assert pixels.shape == (32, 32)
    expected = np.rint(_stored(api, digits[0])[..., 0] * 255).astype(np.uint8)
    assert np.array_equal(pixels[::4, ::4], expected)


def test_labelling_one_sample(api, gestures, problem) -> None:
    writer = api.auth(Role.DATA_SCIENTIST)
    url = f"/datasets/api-gestures/samples/{gestures[1]['id']}/label"
    labelled = api.client.put(url, json={"label": "circle"}, headers=writer)
    assert labelled.status_code == 200 and labelled.json()["label"] == "circle"
    shown = api.client.get(f"/datasets/api-gestures/samples/{gestures[1]['id']}", headers=writer).json()
    assert shown["label"] == "circle"
    refused = problem(api.client.put(url, json={"label": "jump"}, headers=writer), 422)
    assert "idle, wave, punch, circle, shake" in refused["detail"]
    assert {e["field"] for e in problem(api.client.put(url, json={}, headers=writer), 422)["errors"]} == {
        "label"
    }
    cleared = api.client.put(url, json={"label": None}, headers=writer)
    assert cleared.json()["label"] is None
    unlabelled = api.client.get("/datasets/api-gestures/samples?unlabelled=true", headers=writer).json()
    assert gestures[1]["id"] in [s["id"] for s in unlabelled["data"]]
    api.client.put(url, json={"label": gestures[1]["label"]}, headers=writer)


def test_bulk_labelling_is_all_or_nothing(api, gestures, problem) -> None:
    writer = api.auth(Role.DATA_SCIENTIST)
    ids = [s["id"] for s in gestures[10:15]]
    missing = api.client.post(
        "/datasets/api-gestures/labels",
        json={"samples": [*ids, "smp_nothere"], "label": "punch"},
        headers=writer,
    )
    assert "smp_nothere" in problem(missing, 404)["detail"]
    for sample in gestures[10:15]:
        now = api.client.get(f"/datasets/api-gestures/samples/{sample['id']}", headers=writer).json()
        assert now["label"] == sample["label"]
    done = api.client.post(
        "/datasets/api-gestures/labels", json={"samples": ids, "label": "punch"}, headers=writer
    )
    assert done.json() == {"dataset": "api-gestures", "label": "punch", "updated": 5}
    punches = api.client.get("/datasets/api-gestures/samples?label=punch&limit=1000", headers=writer).json()
    assert set(ids) <= {s["id"] for s in punches["data"]}
    unknown = api.client.post(
        "/datasets/api-gestures/labels", json={"samples": ids, "label": "x"}, headers=writer
    )
    assert "allowed labels are idle" in problem(unknown, 422)["detail"]
    empty = api.client.post(
        "/datasets/api-gestures/labels", json={"samples": [], "label": "x"}, headers=writer
    )
    assert problem(empty, 422)["errors"][0]["field"] == "samples"


def test_uploading_one_sample(api, problem) -> None:
    writer = api.auth(Role.DATA_SCIENTIST)
    _generate(api, "api-upload", "digits", 5)
    pixels = (np.arange(64, dtype=np.uint8) * 4).reshape(8, 8)
    files = {"file": ("../../../eight.png", _png(pixels), "image/png")}
    stored = api.client.post("/datasets/api-upload/samples", files=files, data={"label": "8"}, headers=writer)
    assert stored.status_code == 201, stored.text
    sample = stored.json()
    assert (sample["label"], sample["source"], sample["origin"]) == ("8", "upload:eight.png", "uploaded")
    assert np.allclose(_stored(api, sample)[..., 0], pixels / 255.0)
    again = api.client.post("/datasets/api-upload/samples", files=files, headers=writer)
    assert sample["id"] in problem(again, 409)["detail"]
    unlabelled = api.client.post(
        "/datasets/api-upload/samples",
        files={"file": ("blank.png", _png(np.zeros((8, 8), np.uint8)))},
        headers=writer,
    )
    assert unlabelled.status_code == 201 and unlabelled.json()["label"] is None
    wide = {"file": ("wide.png", _png(np.zeros((8, 9), np.uint8)))}
    assert (
        "does not match"
        in problem(api.client.post("/datasets/api-upload/samples", files=wide, headers=writer), 422)["detail"]
    )
    text = {"file": ("notes.txt", b"hello")}
    assert (
        ".png"
        in problem(api.client.post("/datasets/api-upload/samples", files=text, headers=writer), 422)["detail"]
    )
    bad_label = api.client.post(
        "/datasets/api-upload/samples", files=wide, data={"label": "eleven"}, headers=writer
    )
    assert "unknown label 'eleven'" in problem(bad_label, 422)["detail"]
    problem(api.client.post("/datasets/missing/samples", files=files, headers=writer), 404)
    assert api.client.get("/datasets/api-upload", headers=writer).json()["samples"] == 7
    assert not any((api.context.settings.uploads_dir).iterdir())


def test_every_route_needs_a_token_and_writes_need_a_writer(api, gestures, problem) -> None:
    sample = gestures[0]["id"]
    base = "/datasets/api-gestures"
    reads = [f"{base}/samples", f"{base}/samples/{sample}", f"{base}/samples/{sample}/preview"]
    for url in reads:
        problem(api.client.get(url), 401)
        assert api.client.get(url, headers=api.auth(Role.OPERATOR)).status_code == 200
    writes = [
        ("PUT", f"{base}/samples/{sample}/label", {"json": {"label": "wave"}}),
        ("POST", f"{base}/labels", {"json": {"samples": [sample], "label": "wave"}}),
        ("POST", f"{base}/samples", {"files": {"file": ("a.npy", b"x")}}),
        ("POST", f"{base}/imports", {"files": {"file": ("a.csv", b"x")}}),
    ]
    for method, url, body in writes:
        problem(api.client.request(method, url, **body), 401)
        for role in (Role.VIEWER, Role.OPERATOR):
            refused = problem(api.client.request(method, url, headers=api.auth(role), **body), 403)
            assert "datasets:write" in refused["detail"]


def test_unknown_datasets_and_samples_are_404(api, gestures, problem) -> None:
    viewer, writer = api.auth(Role.VIEWER), api.auth(Role.DATA_SCIENTIST)
    assert (
        "no dataset named 'nope'"
        in problem(api.client.get("/datasets/nope/samples", headers=viewer), 404)["detail"]
    )
    for url in ("/datasets/api-gestures/samples/smp_nope", "/datasets/api-gestures/samples/smp_nope/preview"):
        assert "smp_nope" in problem(api.client.get(url, headers=viewer), 404)["detail"]
    _generate(api, "api-other", "sine", 3)
    elsewhere = api.client.get(f"/datasets/api-other/samples/{gestures[0]['id']}", headers=viewer)
    assert f"no sample {gestures[0]['id']!r} in dataset 'api-other'" in problem(elsewhere, 404)["detail"]
    put = api.client.put(
        "/datasets/api-gestures/samples/smp_nope/label", json={"label": "wave"}, headers=writer
    )
    problem(put, 404)


def test_uploads_over_the_limit_are_413_and_leave_nothing(small, problem) -> None:
    client, context = small.client, small.context
    client.headers.update(small.auth(Role.DATA_SCIENTIST))
    DatasetService(context).generate("tiny", "gestures", samples=5, seed=1)
    big_window = ("\n".join("0.5,0.5,0.5" for _ in range(64)) + "\n").encode() * 3
    assert len(big_window) > _LIMIT
    too_big = client.post("/datasets/tiny/samples", files={"file": ("w.csv", big_window)})
    assert "2,048 bytes" in problem(too_big, 413)["detail"]
    table = b"a,label\n" + b"".join(f"{i},x\n".encode() for i in range(600))
    assert len(table) > _LIMIT
    refused = client.post("/datasets/big/imports", files={"file": ("t.csv", table)}, data={"create": "true"})
    assert problem(refused, 413)["title"] == "Content too large"
    assert client.get("/datasets/tiny").json()["samples"] == 5
    problem(client.get("/datasets/big"), 404)
    assert not any((context.settings.uploads_dir).iterdir())
    small_window = ("\n".join("0.25,0.5,0.75" for _ in range(64)) + "\n").encode()
    assert len(small_window) <= _LIMIT
    assert client.post("/datasets/tiny/samples", files={"file": ("w.csv", small_window)}).status_code == 201
