from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from tinymlaas.services.auth import Role


def test_a_data_scientist_creates_a_dataset_from_a_generator(api, problem) -> None:
    body = {"name": "api-sine", "generator": "sine", "samples": 20, "seed": 1}
    created = api.client.post("/datasets", json=body, headers=api.auth(Role.DATA_SCIENTIST))
    assert created.status_code == 201, created.text
    assert created.json()["samples"] == 20
    shown = api.client.get("/datasets/api-sine", headers=api.auth(Role.VIEWER)).json()
    assert shown == created.json()
    listed = api.client.get("/datasets", headers=api.auth(Role.VIEWER)).json()
    assert "api-sine" in [d["name"] for d in listed["data"]]
    again = api.client.post("/datasets", json=body, headers=api.auth(Role.DATA_SCIENTIST))
    assert problem(again, 409)["type"] == "urn:tinymlaas:problem:conflict"


def test_creating_needs_a_token_and_a_role_that_may(api, problem) -> None:
    body = {"name": "nope", "generator": "sine", "samples": 5}
    problem(api.client.post("/datasets", json=body), 401)
    for role in (Role.VIEWER, Role.OPERATOR):
        assert (
            "datasets:write"
            in problem(api.client.post("/datasets", json=body, headers=api.auth(role)), 403)["detail"]
        )


def test_bad_input_names_each_field(api, problem) -> None:
    response = api.client.post(
        "/datasets", json={"name": "", "samples": 0}, headers=api.auth(Role.DATA_SCIENTIST)
    )
    fields = {e["field"] for e in problem(response, 422)["errors"]}
    assert fields == {"name", "generator", "samples"}
    unknown = api.client.post(
        "/datasets", json={"name": "x", "generator": "nope"}, headers=api.auth(Role.DATA_SCIENTIST)
    )
    assert "nope" in problem(unknown, 404)["detail"]


def test_an_unknown_dataset_is_404(api, problem) -> None:
    problem(api.client.get("/datasets/missing", headers=api.auth(Role.VIEWER)), 404)


def _zip(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def _png(value: int) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((4, 4), value, dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


def _files_named(root: Path, fragment: str) -> list[Path]:
    return [p for p in root.rglob("*") if fragment in p.name]


def test_importing_a_csv_creates_then_adds_to_a_dataset(api, problem) -> None:
    writer = api.auth(Role.DATA_SCIENTIST)
    table = b"a,b,label\n1,2,x\n3,4,y\n"
    missing = api.client.post("/datasets/api-csv/imports", files={"file": ("t.csv", table)}, headers=writer)
    assert "api-csv" in problem(missing, 404)["detail"]
    created = api.client.post(
        "/datasets/api-csv/imports", files={"file": ("t.csv", table)}, data={"create": "true"}, headers=writer
    )
    assert created.status_code == 201, created.text
    assert created.json() == {
        "dataset": "api-csv", "added": 2, "duplicates": 0, "created": True, "warnings": []
    }  # fmt: skip
    again = api.client.post(
        "/datasets/api-csv/imports", files={"file": ("t.csv", table)}, data={"create": "true"}, headers=writer
    )
    assert problem(again, 409)["type"] == "urn:tinymlaas:problem:conflict"
    more = api.client.post(
        "/datasets/api-csv/imports", files={"file": ("u.csv", b"a,b,label\n1,2,x\n5,6,y\n")}, headers=writer
    )
    assert more.status_code == 200 and more.json() == {
        "dataset": "api-csv", "added": 1, "duplicates": 1, "created": False, "warnings": []
    }  # fmt: skip
    single = api.client.post(
        "/datasets/api-one/imports", files={"file": ("o.csv", b"a,b,label\n1,2,x\n3,2,x\n")},
        data={"create": "true"}, headers=writer,
    )  # fmt: skip
    assert single.json()["warnings"][0].startswith("the dataset holds one class ('x')")
    shown = api.client.get("/datasets/api-csv", headers=writer).json()
    assert shown["samples"] == 3 and shown["label_counts"] == {"x": 1, "y": 2}
    bad = api.client.post(
        "/datasets/api-csv/imports", files={"file": ("v.csv", b"a,b,label\n1,2,z\n")}, headers=writer
    )
    assert "unknown label 'z'" in problem(bad, 422)["detail"]
    wrong_kind = api.client.post("/datasets/api-csv/imports", files={"file": ("x.txt", b"1")}, headers=writer)
    assert ".zip, .csv, .npz" in problem(wrong_kind, 422)["detail"]
    assert api.client.get("/datasets/api-csv", headers=writer).json()["samples"] == 3


def test_importing_a_zip_of_class_folders(api) -> None:
    archive = _zip({"pics/light/a.png": _png(200), "pics/dark/b.png": _png(10), "pics/dark/c.png": _png(20)})
    created = api.client.post(
        "/datasets/api-zip/imports",
        files={"file": ("pics.zip", archive, "application/zip")},
        data={"create": "true"},
        headers=api.auth(Role.DATA_SCIENTIST),
    )
    assert created.status_code == 201, created.text
    shown = api.client.get("/datasets/api-zip", headers=api.auth(Role.VIEWER)).json()
    assert (shown["kind"], shown["input_shape"], shown["labels"]) == ("image", [4, 4, 1], ["dark", "light"])
    assert shown["label_counts"] == {"dark": 2, "light": 1}


def test_upload_names_never_choose_where_files_land(api, problem) -> None:
    root = api.context.settings.data_dir.parent
    writer = api.auth(Role.DATA_SCIENTIST)
    created = api.client.post(
        "/datasets/api-escape/imports",
        files={"file": ("../../escape-upload.csv", b"a,label\n1,x\n2,y\n")},
        data={"create": "true"},
        headers=writer,
    )
    assert created.status_code == 201, created.text
    sources = api.client.get("/datasets/api-escape/samples", headers=writer).json()["data"]
    assert sorted(s["source"] for s in sources) == ["escape-upload.csv:2", "escape-upload.csv:3"]
    evil = _zip({"ok/a.png": _png(1), "../../../../escape-member.png": _png(2)})
    refused = api.client.post(
        "/datasets/api-evil/imports",
        files={"file": ("..\\..\\evil.zip", evil)},
        data={"create": "true"},
        headers=writer,
    )
    assert "outside the import folder" in problem(refused, 422)["detail"]
    problem(api.client.get("/datasets/api-evil", headers=writer), 404)
    assert _files_named(root.parent, "escape-") == []
    assert not any((api.context.settings.uploads_dir).iterdir())  # every upload was cleaned up


def test_snapshots_over_http(api, problem) -> None:
    writer, viewer = api.auth(Role.DATA_SCIENTIST), api.auth(Role.VIEWER)
    body = {"name": "api-snap", "generator": "gestures", "samples": 25, "seed": 4}
    assert api.client.post("/datasets", json=body, headers=writer).status_code == 201
    assert api.client.get("/datasets/api-snap/snapshots", headers=viewer).json() == {"data": [], "count": 0}
    problem(api.client.post("/datasets/api-snap/snapshots"), 401)
    assert (
        "datasets:write"
        in problem(api.client.post("/datasets/api-snap/snapshots", headers=viewer), 403)["detail"]
    )
    first = api.client.post("/datasets/api-snap/snapshots", headers=writer)
    assert first.status_code == 201, first.text
    snapshot = first.json()
    assert snapshot["samples"] == 25 and sum(snapshot["label_counts"].values()) == 25
    assert snapshot["labels"] == ["idle", "wave", "punch", "circle", "shake"]
    again = api.client.post("/datasets/api-snap/snapshots", headers=writer)
    assert again.status_code == 200 and again.json() == snapshot
    listed = api.client.get("/datasets/api-snap/snapshots", headers=viewer).json()
    assert listed == {"data": [snapshot], "count": 1}
    assert api.client.get("/datasets/api-snap", headers=viewer).json()["snapshots"][0]["id"] == snapshot["id"]
    problem(api.client.get("/datasets/missing/snapshots", headers=viewer), 404)
    problem(api.client.post("/datasets/missing/snapshots", headers=writer), 404)
    ids = [s["id"] for s in api.client.get("/datasets/api-snap/samples", headers=viewer).json()["data"]]
    cleared = api.client.post(
        "/datasets/api-snap/labels", json={"samples": ids, "label": None}, headers=writer
    )
    assert cleared.json()["updated"] == 25
    assert (
        "no samples to snapshot (25 unlabelled)"
        in problem(api.client.post("/datasets/api-snap/snapshots", headers=writer), 422)["detail"]
    )


def test_a_dataset_chooses_how_its_models_scale_inputs(api, problem) -> None:
    writer = api.auth(Role.DATA_SCIENTIST)
    body = {"name": "api-scaling", "generator": "sine", "samples": 20}
    assert api.client.post("/datasets", json=body, headers=writer).json()["input_scaling"] == "standardize"
    changed = api.client.patch("/datasets/api-scaling", json={"input_scaling": "minmax"}, headers=writer)
    assert changed.status_code == 200, changed.text
    assert changed.json()["input_scaling"] == "minmax" and changed.json()["field_labels"] == "accept"
    bad = api.client.patch("/datasets/api-scaling", json={"input_scaling": "zscore"}, headers=writer)
    assert {e["field"] for e in problem(bad, 422)["errors"]} == {"input_scaling"}
    assert (
        "field_labels or input_scaling"
        in problem(api.client.patch("/datasets/api-scaling", json={}, headers=writer), 422)["detail"]
    )
    shown = api.client.get("/datasets/api-scaling", headers=api.auth(Role.VIEWER)).json()
    assert shown["input_scaling"] == "minmax"
