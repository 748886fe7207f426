"""Dashboard login sessions: a signed cookie naming the API token a person logged in with.

The cookie holds the token's id, name and role and an expiry, signed with HMAC-SHA256 under a key
kept in the data directory, so sessions survive a server restart and a forged or edited cookie is
refused. The token's secret is never put in the cookie; instead every request checks that the token
still exists unrevoked, so revoking a token also ends the dashboard sessions opened with it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

__all__ = ["SESSION_COOKIE", "SESSION_TTL_S", "DashboardSession", "open_session", "session_key", "sign"]

SESSION_COOKIE = "tinymlaas_session"
SESSION_TTL_S = 12 * 3600  # a working day; then the person logs in again
_KEY_BYTES = 32


@dataclass(frozen=True)
class DashboardSession:
    """Who is looking at the dashboard: the API token they logged in with, until ``expires``."""

    token_id: str
    name: str
    role: str
    expires: int  # unix seconds


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@lru_cache(maxsize=8)
def session_key(path: Path) -> bytes:
    """The signing key at ``path``, made on first use and readable by the server's user only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes()
    with os.fdopen(descriptor, "wb") as file:
        key = secrets.token_bytes(_KEY_BYTES)
        file.write(key)
    return key


def _mac(key: bytes, payload: str) -> str:
    return _b64(hmac.new(key, payload.encode(), hashlib.sha256).digest())


def sign(session: DashboardSession, key: bytes) -> str:
    """The cookie value: ``payload.mac``, both URL-safe base64."""
    payload = _b64(json.dumps(asdict(session), separators=(",", ":")).encode())
    return f"{payload}.{_mac(key, payload)}"


def open_session(cookie: str | None, key: bytes, now: float | None = None) -> DashboardSession | None:
    """The session a cookie carries; None when it is missing, forged, malformed or expired."""
    if not cookie or cookie.count(".") != 1:
        return None
    payload, mac = cookie.split(".")
    if not hmac.compare_digest(mac, _mac(key, payload)):
        return None
    try:
        session = DashboardSession(**json.loads(_unb64(payload)))
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError):
        return None
    if session.expires <= (time.time() if now is None else now):
        return None
    return session
