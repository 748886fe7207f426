from __future__ import annotations

from tinymlaas.services.auth import Role


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
