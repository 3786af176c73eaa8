"""Escalation tests run on SQLite and on a real PostgreSQL server (``tests/postgres.py``)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from tests.postgres import PostgresServer, postgres_server_fixture
from voice_agent.audit import Keyring
from voice_agent.escalations import EscalationStore

postgres_server = postgres_server_fixture()

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


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
    if request.param == "sqlite":
        path = tmp_path / "audit.db"
        return Backend("sqlite", f"sqlite:///{path}", sqlite_path=path)
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return Backend("postgresql", server.create_database(), server=server)


class Clock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def new_keyring(*ids: str) -> Keyring:
    return Keyring.from_string(
        ";".join(f"{key_id} {base64.b64encode(os.urandom(32)).decode()}" for key_id in ids)
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make_keyring() -> Callable[..., Keyring]:
    """``make_keyring("ka", "kb")``: fresh random keys; the last id is active."""
    return new_keyring


@pytest.fixture
def keyring() -> Keyring:
    return new_keyring("ka")


@pytest.fixture
def store(backend: Backend, keyring: Keyring, clock: Clock) -> Iterator[EscalationStore]:
    with EscalationStore.open(backend.url, keyring, clock=clock) as opened:
        yield opened


@pytest.fixture
def raw(backend: Backend) -> Iterator[Engine]:
    """Direct database access, as someone with the database but not the key would have."""
    engine = create_engine(backend.url)
    yield engine
    engine.dispose()
