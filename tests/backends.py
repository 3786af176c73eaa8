"""The two databases every store runs on in tests: SQLite in a temp dir and a real PostgreSQL server
(harness/postgres.py), plus a controllable clock and throwaway keyrings."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from harness.postgres import PostgresServer
from voice_agent.audit import Keyring


@dataclass
class Backend:
    name: str
    url: str
    server: PostgresServer | None = None
    sqlite_path: Path | None = None

    def raw_bytes(self) -> bytes:
        """Every byte the database keeps on disk (SQLite file, WAL and shm; PostgreSQL's data directory)."""
        if self.sqlite_path is not None:
            files = [p for p in self.sqlite_path.parent.iterdir() if p.name.startswith(self.sqlite_path.name)]
        else:
            assert self.server is not None
            self.server.checkpoint()
            files = [p for p in self.server.data_dir.rglob("*") if p.is_file()]
        return b"".join(p.read_bytes() for p in files)


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    """Needs a ``postgres_server`` fixture in scope (``postgres_server = postgres_server_fixture()``)."""
    if request.param == "sqlite":
        path = tmp_path / "audit.db"
        return Backend("sqlite", f"sqlite:///{path}", sqlite_path=path)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return Backend("postgresql", server.create_database(), server=server)


@pytest.fixture
def raw(backend: Backend) -> Iterator[Engine]:
    """Direct database access, as someone with write access to the database (but not the key) would have."""
    engine = create_engine(backend.url)
    yield engine
    engine.dispose()


class Clock:
    """A controllable time source."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def key_line(key_id: str) -> str:
    """One keyring line with a fresh random key, for tests that hand the same key to several keyrings."""
    return f"{key_id} {base64.b64encode(os.urandom(32)).decode()}"


def new_keyring(*ids: str) -> Keyring:
    return Keyring.from_string(";".join(key_line(key_id) for key_id in ids))
