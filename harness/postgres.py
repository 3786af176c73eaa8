"""A throwaway PostgreSQL server for tests, from the Debian ``postgresql`` package's binaries.

``postgres_server_fixture()`` makes a pytest fixture (session scope by default) that runs ``initdb`` into
a temporary directory, starts the server on a free 127.0.0.1 port (Unix socket in the same directory,
trust authentication: it is reachable only from this machine and lives for one test run), and stops it
with ``pg_ctl stop -m immediate`` at the end. PostgreSQL refuses to run as root, so when the tests run
as root the cluster is owned by, and run as, the ``postgres`` OS user. Without the binaries the fixture
skips; with them, any failure to start is a test error.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.real_parts import report_absent

RUN_AS = "postgres"


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb`` and ``pg_ctl`` (or ``PG_BINDIR``)."""
    override = os.environ.get("PG_BINDIR")
    candidates = [override] if override else glob.glob("/usr/lib/postgresql/*/bin")

    def version(path: str) -> float:
        try:
            return float(Path(path).parent.name)
        except ValueError:
            return 0.0

    for candidate in sorted(candidates, key=version, reverse=True):
        path = Path(candidate)
        if (path / "initdb").is_file() and (path / "pg_ctl").is_file():
            return path
    return None


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    socket_dir: Path
    data_dir: Path
    user: str = "postgres"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A fresh, empty database; returns its SQLAlchemy URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:16]}"
        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"'.encode())
        return self.url(name)

    def checkpoint(self) -> None:
        """Flush everything to the data files (for tests that inspect them)."""
        import psycopg

        with psycopg.connect(
            host=self.host, port=self.port, user=self.user, dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(b"CHECKPOINT")


def _free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_owner(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        raise RuntimeError("running as root needs runuser to start PostgreSQL as the postgres user")
    return [runuser, "-u", RUN_AS, "--", *command]


def _run(command: list[str]) -> None:
    result = subprocess.run(_as_owner(command), capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{Path(command[0]).name} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


@contextmanager
def running_postgres(bindir: Path) -> Iterator[PostgresServer]:
    """Init, start, yield, and stop (``-m immediate``) a private cluster; the directory is removed."""
    root = Path(tempfile.mkdtemp(prefix="va-pg-"))
    try:
        if os.geteuid() == 0:
            shutil.chown(root, user=RUN_AS, group=RUN_AS)
        data = root / "data"
        _run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]
        )
        server: PostgresServer | None = None
        for _attempt in range(3):  # a free port can be taken between probing and binding
            port = _free_port()
            options = (
                f"-p {port} -k {root} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                _run(
                    [
                        str(bindir / "pg_ctl"),
                        "-D",
                        str(data),
                        "-o",
                        options,
                        "-l",
                        str(root / "log"),
                        "-w",
                        "start",
                    ]
                )
            except RuntimeError:
                continue
            server = PostgresServer("127.0.0.1", port, root, data)
            break
        if server is None:
            log = (root / "log").read_text(errors="replace") if (root / "log").exists() else ""
            raise RuntimeError(f"PostgreSQL did not start:\n{log}")
        try:
            yield server
        finally:
            subprocess.run(
                _as_owner([str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
                capture_output=True,
                timeout=60,
                check=False,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


def postgres_server_fixture(scope: Any = "session") -> Callable[..., Iterator[PostgresServer]]:
    """Make a fixture yielding a running ``PostgresServer``; assign it to a name in a test module."""

    @pytest.fixture(scope=scope)
    def postgres_server() -> Iterator[PostgresServer]:
        bindir = find_bindir()
        if bindir is None:
            report_absent("postgresql")
        with running_postgres(bindir) as server:
            yield server

    return postgres_server
