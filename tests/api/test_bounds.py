"""Request bodies are bounded before they are read: sizes, credentials, forms, archives and rates.

Refusals that must come before any byte of the body is read are sent over a raw socket that sends
the request head alone: an answer to it cannot have read a body that was never sent.
"""

from __future__ import annotations

import io
import json
import select
import socket
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from helpers.servers import Api, serve
from tinymlaas.services.auth import Role
from tinymlaas.services.context import Context
from tinymlaas.settings import Settings

MIB = 1024 * 1024


def _raw(api: Api, method: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """Sends a request head with no body and reads the answer up to the server closing the socket."""
    url = urlsplit(str(api.client.base_url))
    lines = [
        f"{method} {url.path.rstrip('/')}{path} HTTP/1.1",
        f"Host: {url.netloc}",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    with socket.create_connection((url.hostname, url.port), timeout=15) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    answer = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in answer.items()}, body


def _stream(api: Api, path: str, headers: dict[str, str], total: int) -> tuple[bytes, int]:
    """POSTs up to ``total`` bytes chunked (no length declared up front), sending only until an answer
    arrives; the answer's first bytes and how much body was sent."""
    url = urlsplit(str(api.client.base_url))
    lines = [
        f"POST {url.path.rstrip('/')}{path} HTTP/1.1",
        f"Host: {url.netloc}",
        "Transfer-Encoding: chunked",
        *(f"{k}: {v}" for k, v in headers.items()),
    ]
    chunk = b"x" * 65536
    framed = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    sent = 0
    with socket.create_connection((url.hostname, url.port), timeout=15) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while sent < total and not select.select([sock], [], [], 0)[0]:
            try:
                sock.sendall(framed)
            except OSError:
                break  # the server closed the connection: its answer is waiting to be read
            sent += len(chunk)
        return sock.recv(65536), sent


def test_a_declared_length_over_the_limit_is_refused_before_the_body(api, problem) -> None:
    status, headers, body = _raw(
        api,
        "POST",
        "/datasets",
        {**api.auth(Role.ADMIN), "Content-Type": "application/json", "Content-Length": str(600 * MIB)},
    )
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    detail = json.loads(body)["detail"]
    assert f"{600 * MIB:,}" in detail and f"{MIB:,}" in detail, detail


def test_a_streamed_body_is_stopped_once_it_passes_the_limit(api) -> None:
    headers = {**api.auth(Role.ADMIN), "Content-Type": "application/json"}
    answer, sent = _stream(api, "/datasets", headers, 200 * MIB)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 413 Request Entity Too Large", answer
    assert b"connection: close" in rest.lower()
    assert MIB < sent < 64 * MIB, sent


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer tmls_not-a-token", "Basic YWRtaW46YWRtaW4="],
    ids=["none", "unknown", "basic"],
)
def test_a_body_without_valid_credentials_is_refused_unread(api, authorization: str | None) -> None:
    headers = {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(600 * MIB)}
    if authorization is not None:
        headers["Authorization"] = authorization
    status, answer, body = _raw(api, "POST", "/datasets/anything/imports", headers)
    assert status == 401
    assert answer["www-authenticate"] == "Bearer"
    assert json.loads(body)["status"] == 401


def test_an_unauthenticated_stream_is_refused_after_little_is_sent(api) -> None:
    answer, sent = _stream(api, "/datasets", {"Content-Type": "application/json"}, 600 * MIB)
    assert answer.startswith(b"HTTP/1.1 401 Unauthorized\r\n"), answer
    # Whatever the socket buffers took before the answer arrived, never the body.
    assert sent < 64 * MIB, sent


def test_a_dashboard_post_without_a_session_goes_to_login_unread(api) -> None:
    url = urlsplit(str(api.client.base_url))
    bare = Api(httpx.Client(base_url=f"{url.scheme}://{url.netloc}"), api.context, api.tokens)
    headers = {"Content-Type": "multipart/form-data; boundary=x", "Content-Length": str(600 * MIB)}
    status, answer, _ = _raw(bare, "POST", "/datasets/import", headers)
    assert (status, answer["location"]) == (303, "/login?next=/datasets/import")


def test_a_multipart_form_with_too_many_parts_is_refused(api, problem) -> None:
    files = [("file", (f"part{i}.csv", b"a,label\n1,x\n", "text/csv")) for i in range(5)]
    refused = problem(
        api.client.post("/datasets/parts/imports", files=files, headers=api.auth(Role.ADMIN)), 400
    )
    assert "Too many files" in refused["detail"]
    fields = {f"field{i}": "x" for i in range(300)}
    files = [("file", ("one.csv", b"a,label\n1,x\n", "text/csv"))]
    refused = problem(
        api.client.post("/datasets/parts/imports", data=fields, files=files, headers=api.auth(Role.ADMIN)),
        400,
    )
    assert "Too many fields" in refused["detail"]
    big = {"label_column": "x" * (65 * 1024)}
    refused = problem(
        api.client.post("/datasets/parts/imports", data=big, files=files, headers=api.auth(Role.ADMIN)), 400
    )
    assert "maximum size" in refused["detail"]


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def _everything_under(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def small_imports(tmp_path) -> Iterator[Api]:
    context = Context(Settings(data_dir=tmp_path / "data", max_import_bytes=4 * MIB))
    with serve(context) as api:
        yield api


@pytest.mark.parametrize(
    ("members", "said"),
    [
        ({"cat/bomb.png": bytes(3 * MIB)}, "at most 100 times is accepted"),
        (
            {f"cat/{i}.png": bytes(1000) + bytes(range(256)) * 4096 for i in range(6)},
            "bytes an import may be",
        ),
    ],
    ids=["ratio", "total"],
)
def test_a_zip_bomb_is_refused_before_anything_is_written(small_imports, problem, members, said) -> None:
    api = small_imports
    settings = api.context.settings
    archive = _zip(members)
    assert len(archive) < MIB
    blobs_before = _everything_under(settings.blob_dir)
    response = api.client.post(
        "/datasets/bombed/imports",
        data={"create": "true"},
        files={"file": ("bomb.zip", archive, "application/zip")},
        headers=api.auth(Role.ADMIN),
    )
    assert said in problem(response, 413)["detail"]
    assert _everything_under(settings.uploads_dir) == []
    assert _everything_under(settings.blob_dir) == blobs_before
    problem(api.client.get("/datasets/bombed", headers=api.auth(Role.ADMIN)), 404)


def test_every_response_carries_security_headers(api) -> None:
    url = urlsplit(str(api.client.base_url))
    with httpx.Client(base_url=f"{url.scheme}://{url.netloc}") as site:
        for path in (
            "/api/v1/boards",
            "/api/v1/datasets",
            "/login",
            "/static/style.css",
            "/docs",
            "/nowhere",
        ):
            headers = site.get(path).headers
            assert headers["x-content-type-options"] == "nosniff", path
            assert headers["x-frame-options"] == "DENY", path
            dashboard = not path.startswith(("/api/", "/docs"))
            assert headers["referrer-policy"] == ("same-origin" if dashboard else "no-referrer"), path
            assert "frame-ancestors 'none'" in headers["content-security-policy"], path
        api_headers = site.get("/api/v1/boards").headers
        assert api_headers["cache-control"] == "no-store"
        assert api_headers["content-security-policy"].startswith("default-src 'none'")
        page = site.get("/login").headers["content-security-policy"]
        assert "script-src 'self';" in page and "unsafe-eval" not in page


def test_a_token_that_empties_its_bucket_gets_429(tmp_path, problem) -> None:
    context = Context(Settings(data_dir=tmp_path / "data", api_rate_burst=3, api_rate_per_s=0.2))
    with serve(context) as api:
        viewer, admin = api.auth(Role.VIEWER), api.auth(Role.ADMIN)
        for _ in range(3):
            assert api.client.get("/datasets", headers=viewer).status_code == 200
        limited = api.client.get("/datasets", headers=viewer)
        body = problem(limited, 429)
        assert 1 <= int(limited.headers["retry-after"]) <= 5
        assert "3 requests" in body["detail"]
        assert api.client.get("/datasets", headers=admin).status_code == 200  # other tokens are unaffected
