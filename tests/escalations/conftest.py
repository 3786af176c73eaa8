"""Escalation tests run on SQLite and on a real PostgreSQL server (``harness/postgres.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest

from harness.postgres import postgres_server_fixture
from tests.backends import Backend, Clock, new_keyring
from tests.backends import backend as backend  # fixtures: used by parameter name
from tests.backends import raw as raw
from voice_agent.audit import Keyring
from voice_agent.escalations import EscalationStore

postgres_server = postgres_server_fixture()

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


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
