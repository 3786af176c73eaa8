"""The console's store tests run on SQLite and on a real PostgreSQL server (``harness/postgres.py``), at a
controllable clock; what they share besides fixtures is in ``common.py``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.postgres import postgres_server_fixture
from tests.backends import Backend, Clock
from tests.backends import backend as backend  # fixtures: used by parameter name
from tests.backends import raw as raw
from tests.console.common import KEY_A, T0
from voice_agent.audit import AuditTrail, Keyring

postgres_server = postgres_server_fixture()


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def keyring() -> Keyring:
    return Keyring.from_string(KEY_A)


@pytest.fixture
def trail(backend: Backend, keyring: Keyring, clock: Clock) -> Iterator[AuditTrail]:
    with AuditTrail.open(backend.url, keyring, clock=clock) as opened:
        yield opened
