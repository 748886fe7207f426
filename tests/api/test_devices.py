from __future__ import annotations

from tinymlaas.services.auth import Role


def test_devices_filter_by_board_and_presence(api, problem) -> None:
    def endpoints(**params: object) -> list[str]:
        response = api.client.get("/devices", params=params, headers=api.auth(Role.VIEWER))
        return [d["endpoint"] for d in response.json()["data"]]

    assert endpoints() == ["dev-a", "dev-b"]
    assert endpoints(board="rpi4") == ["dev-b"]
    assert endpoints(online="true") == ["dev-a"]
    assert endpoints(online="false", board="pico") == []


def test_a_device_shows_its_events_and_an_unknown_one_is_404(api, problem) -> None:
    shown = api.client.get("/devices/dev-a", headers=api.auth(Role.OPERATOR)).json()
    assert shown["board"] == "pico"
    assert shown["online"] is True
    assert "events" in shown
    assert (
        "known: dev-a"
        in problem(api.client.get("/devices/nobody", headers=api.auth(Role.VIEWER)), 404)["detail"]
    )


def test_devices_need_a_token_and_valid_filters(api, problem) -> None:
    problem(api.client.get("/devices"), 401)
    body = problem(api.client.get("/devices", params={"online": "maybe"}, headers=api.auth(Role.VIEWER)), 422)
    assert body["errors"][0]["field"] == "online"
