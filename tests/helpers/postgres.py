"""A throwaway PostgreSQL server for one test run, and a fresh database per test.

The server lives in a temporary directory, listens on 127.0.0.1 on a free port and trades durability
for speed (no fsync), because nothing in it outlives the run. Each test gets its own database copied
from a template already migrated to head, which is much faster than migrating every time.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
from sqlalchemy import make_url

from tinymlaas.storage.db import open_database

__all__ = ["DATABASE_URL_VARIABLE", "PostgresServer", "find_binaries", "running_server"]

# Where a test puts its store's URL, so every ``Settings`` it makes, in this process or another, reads it.
DATABASE_URL_VARIABLE = "TINYMLAAS_DATABASE_URL"

_BIN_GLOB = "/usr/lib/postgresql/*/bin"
_TEMPLATE = "tinymlaas_template"
_START_TIMEOUT_S = 60


def find_binaries() -> Path:
    """The newest installed PostgreSQL's bin directory; Debian keeps it off PATH."""
    candidates = [Path(p) for p in sorted(Path("/").glob(_BIN_GLOB.lstrip("/")), key=_major_version)]
    found = [c for c in candidates if (c / "initdb").exists() and (c / "pg_ctl").exists()]
    if not found:
        raise RuntimeError(
            f"no PostgreSQL server binaries under {_BIN_GLOB}; "
            "`make setup` installs Debian's postgresql package, which the store tests need"
        )
    return found[-1]


def _major_version(path: Path) -> int:
    version = path.parent.name
    return int(version) if version.isdigit() else 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One running server; ``database()`` hands out a fresh migrated database and drops it after."""

    def __init__(self, root: Path, bin_dir: Path, port: int) -> None:
        self.root = root
        self.bin_dir = bin_dir
        self.port = port
        self.user = "tinymlaas"
        self.password = secrets.token_hex(8)

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}:{self.password}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        """Runs a server command, as the ``postgres`` user when we are root (initdb refuses root)."""
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({result.returncode}): {result.stderr.strip() or result.stdout}"
            )

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        password_file = self.root / "password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o644)
        self._run(
            "initdb", "-D", str(self.data_dir), "-U", self.user, "--auth=scram-sha-256",
            f"--pwfile={password_file}", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync",
        )  # fmt: skip
        password_file.unlink()
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-c port={self.port}",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
                "-c max_connections=300",
                "-c shared_buffers=64MB",
            ]
        )
        self._run(
            "pg_ctl", "start", "-D", str(self.data_dir), "-w", "-t", str(_START_TIMEOUT_S),
            "-l", str(self.root / "server.log"), "-o", options,
        )  # fmt: skip
        self._admin(f"CREATE DATABASE {_TEMPLATE}")
        sessions = open_database(self.url(_TEMPLATE))
        sessions.kw["bind"].dispose()

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "immediate", "-w")

    def _admin(self, statement: str) -> None:
        with psycopg.connect(self.url("postgres").replace("+psycopg", ""), autocommit=True) as connection:
            connection.execute(statement)  # type: ignore[arg-type]

    def create_database(self, *, empty: bool = False) -> str:
        """A new database at the schema's head, or with no tables at all; returns its URL."""
        name = f"t_{secrets.token_hex(6)}"
        template = "template0" if empty else _TEMPLATE
        self._admin(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drops the database even while engines still hold connections to it."""
        self._admin(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")

    @contextlib.contextmanager
    def database(self, *, empty: bool = False) -> Iterator[str]:
        url = self.create_database(empty=empty)
        try:
            yield url
        finally:
            self.drop_database(url)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """Starts a server in a new temporary directory and removes both at the end."""
    bin_dir = find_binaries()
    root = Path(tempfile.mkdtemp(prefix="tinymlaas-pg-"))
    server = PostgresServer(root, bin_dir, _free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
