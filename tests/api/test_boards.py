from __future__ import annotations


def test_boards_are_public_and_paged(api, problem) -> None:
    everything = api.client.get("/boards").json()
    assert everything["count"] == len(everything["data"]) > 2
    paged = api.client.get("/boards", params={"limit": 2, "offset": 1}).json()
    assert paged["count"] == everything["count"]
    assert paged["data"] == everything["data"][1:3]


def test_a_board_shows_its_figures_and_an_unknown_one_is_404(api, problem) -> None:
    pico = api.client.get("/boards/pico").json()
    assert pico["id"] == "pico"
    assert pico["usable_ram_bytes"] > 0
    body = problem(api.client.get("/boards/no-such-board"), 404)
    assert body["type"] == "urn:tinymlaas:problem:not-found"
    assert "no-such-board" in body["detail"]


def test_a_bad_page_is_a_validation_problem(api, problem) -> None:
    body = problem(api.client.get("/boards", params={"limit": 0}), 422)
    assert body["type"] == "urn:tinymlaas:problem:validation"
    assert [(e["in"], e["field"]) for e in body["errors"]] == [("query", "limit")]
