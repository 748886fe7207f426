"""Dashboard sessions kept server-side, and the checks every dashboard post passes (origin, CSRF)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from helpers.seeding import csrf_token, log_in, logged_in_client
from tinymlaas.server.app import create_app
from tinymlaas.services.audit import audit_page
from tinymlaas.services.auth import Role, create_token, list_tokens, revoke_token
from tinymlaas.services.context import Context
from tinymlaas.services.datasets import DatasetService
from tinymlaas.settings import Settings
from tinymlaas.storage.tables import ApiTokenRow
from tinymlaas.web.sessions import SESSION_COOKIE

_DATASET = {"name": "sec-d", "generator": "gestures", "samples": "5"}


def _context(tmp_path) -> Context:
    return Context(Settings(data_dir=tmp_path / "data"))


def _datasets(context: Context) -> list[str]:
    return [d.name for d in DatasetService(context).list()]


def _expire(context: Context, token_id: str) -> None:
    with context.session() as session:
        session.get(ApiTokenRow, token_id).expires_at = datetime.now(UTC) - timedelta(seconds=1)


def test_the_session_cookie_is_a_random_secret_httponly_and_samesite(tmp_path) -> None:
    context = _context(tmp_path)
    secret = create_token(context, Role.VIEWER, "v")[1]
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        with TestClient(create_app(context), base_url=base) as client:
            response = log_in(client, secret)
            assert response.status_code == 303
            cookie = response.headers["set-cookie"]
            assert cookie.startswith(f"{SESSION_COOKIE}=")
            assert "HttpOnly" in cookie and "SameSite=lax" in cookie
            assert ("Secure" in cookie) is secure
            value = client.cookies[SESSION_COOKIE]
            assert secret not in value and "tok_" not in value  # nothing of the token in the cookie


def test_a_cookie_replayed_after_logout_is_refused(tmp_path) -> None:
    context = _context(tmp_path)
    with logged_in_client(context, Role.VIEWER) as client:
        cookie = client.cookies[SESSION_COOKIE]
        out = client.post("/logout", follow_redirects=False)
        assert out.status_code == 303 and out.headers["location"] == "/login"
        assert client.get("/", follow_redirects=False).status_code == 303
        client.cookies.set(SESSION_COOKIE, cookie)  # a copy kept from before the logout
        replayed = client.get("/", follow_redirects=False)
    assert replayed.status_code == 303
    assert replayed.headers["location"].startswith("/login")


def test_revoking_the_token_ends_every_session_opened_with_it(tmp_path) -> None:
    context = _context(tmp_path)
    with logged_in_client(context, Role.ADMIN, name="first admin"):
        pass  # kept, so the operator token may be revoked
    with logged_in_client(context, Role.OPERATOR, name="op") as one, TestClient(create_app(context)) as two:
        assert log_in(two, create_token(context, Role.OPERATOR, "op2")[1]).status_code == 303
        operator = next(t for t in list_tokens(context) if t["name"] == "op")
        revoke_token(context, operator["id"])
        assert one.get("/", follow_redirects=False).status_code == 303
        assert two.get("/", follow_redirects=False).status_code == 200  # another token's session lives on


def test_an_expired_token_neither_logs_in_nor_keeps_its_session(tmp_path) -> None:
    context = _context(tmp_path)
    token, secret = create_token(context, Role.VIEWER, "short", expires_in="1h")
    with TestClient(create_app(context)) as client:
        assert log_in(client, secret).status_code == 303
        assert client.get("/", follow_redirects=False).status_code == 200
        _expire(context, token["id"])
        assert client.get("/", follow_redirects=False).status_code == 303
        again = log_in(client, secret)
    assert again.status_code == 401
    assert "token expired" in again.text


def test_a_cross_origin_post_with_a_valid_session_is_refused(tmp_path) -> None:
    context = _context(tmp_path)
    with logged_in_client(context, Role.DATA_SCIENTIST) as client:
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": "http://testserver:8080"},  # another port is another origin
            {"Origin": "null"},
        ):
            refused = client.post("/datasets", data=_DATASET, headers=headers, follow_redirects=False)
            assert refused.status_code == 403, headers
            assert "cross-origin request refused" in refused.text
        del client.headers["Origin"]
        by_referer = client.post(
            "/datasets",
            data=_DATASET,
            headers={"Referer": "https://evil.example/page"},
            follow_redirects=False,
        )
        assert by_referer.status_code == 403 and "evil.example" in by_referer.text
        anonymous = client.post("/datasets", data=_DATASET, follow_redirects=False)
        assert anonymous.status_code == 403 and "no Origin or Referer" in anonymous.text
    assert _datasets(context) == []


def test_a_post_without_the_sessions_csrf_token_is_refused(tmp_path) -> None:
    context = _context(tmp_path)
    with logged_in_client(context, Role.DATA_SCIENTIST) as client:
        token = client.headers.pop("X-CSRF-Token")
        missing = client.post("/datasets", data=_DATASET, follow_redirects=False)
        altered = token[:-1] + ("1" if token.endswith("0") else "0")
        wrong = client.post("/datasets", data={**_DATASET, "csrf_token": altered}, follow_redirects=False)
        logout = client.post("/logout", follow_redirects=False)
        assert client.get("/", follow_redirects=False).status_code == 200  # the logout was refused too
    for response in (missing, wrong, logout):
        assert response.status_code == 403
        assert "no valid CSRF token" in response.text
    assert _datasets(context) == []


def test_a_form_posted_with_its_token_works(tmp_path) -> None:
    context = _context(tmp_path)
    with logged_in_client(context, Role.DATA_SCIENTIST, landing="/datasets") as client:
        del client.headers["X-CSRF-Token"]  # only what the form itself carries
        page = client.get("/datasets").text
        form = re.search(r'<form[^>]*data-testid="create-form"[^>]*>(.*?)</form>', page, re.S)
        assert form, "no create form"
        created = client.post(
            "/datasets", data={**_DATASET, "csrf_token": csrf_token(form.group(1))}, follow_redirects=False
        )
    assert created.status_code == 303, created.text
    assert _datasets(context) == ["sec-d"]


def test_every_post_form_carries_the_csrf_token(tmp_path) -> None:
    context = _context(tmp_path)
    DatasetService(context).generate("sec-b", "gestures", samples=4, seed=1)
    with logged_in_client(context, Role.ADMIN) as client:
        expected = client.headers["X-CSRF-Token"]
        for path in (
            "/",
            "/datasets",
            "/datasets/sec-b",
            "/training",
            "/models",
            "/deployments",
            "/pipeline",
        ):
            page = client.get(path).text
            forms = re.findall(r"<form\b([^>]*)>(.*?)</form>", page, re.S)
            posting = [body for attributes, body in forms if 'method="post"' in attributes]
            assert posting, path
            for body in posting:
                assert f'name="csrf_token" value="{expected}"' in body, (path, body[:200])


def test_the_login_form_is_refused_from_another_origin(tmp_path) -> None:
    context = _context(tmp_path)
    secret = create_token(context, Role.ADMIN, "a")[1]
    with TestClient(create_app(context)) as client:
        refused = client.post(
            "/login",
            data={"token": secret},
            headers={"Origin": "https://evil.example"},
            follow_redirects=False,
        )
        assert refused.status_code == 403
        assert SESSION_COOKIE not in client.cookies


def test_the_audit_page_shows_changes_and_refusals_to_admins_only(tmp_path) -> None:
    context = _context(tmp_path)
    with (
        logged_in_client(context, Role.ADMIN, name="boss") as admin,
        logged_in_client(context, Role.VIEWER, name="looker") as viewer,
    ):
        assert admin.post("/datasets", data=_DATASET, follow_redirects=False).status_code == 303
        assert viewer.post("/datasets", data=_DATASET, follow_redirects=False).status_code == 403
        page = admin.get("/audit")
        assert viewer.get("/audit").status_code == 403
        assert 'href="/audit"' in page.text and 'href="/audit"' not in viewer.get("/").text
    assert page.status_code == 200
    rows = re.findall(r'data-testid="audit-row" data-action="([^"]+)" data-outcome="([^"]+)"', page.text)
    assert rows[0] == ("dashboard:create_dataset_submit", "denied")  # newest first
    assert rows[1] == ("dashboard:create_dataset_submit", "ok")
    events, count = audit_page(context, limit=2)
    assert count >= 4  # two logins and the two posts
    assert events[0]["actor"].startswith("token looker (") and events[0]["role"] == "viewer"
    assert events[1]["actor"].startswith("token boss (") and events[1]["detail"]["status"] == 303
