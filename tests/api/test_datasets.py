from __future__ import annotations

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
