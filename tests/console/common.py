"""What the console's store tests share besides their fixtures (``conftest.py``): the clock's start, a
password, an administrator, the one key of the ``keyring`` fixture (a rotation test keeps it in a keyring
of its own), argon2 at a test's cost, the events a test caused, and an enrolled second factor.

Here rather than in ``conftest.py``: a test module importing ``conftest`` gets a second copy of it, with
another random key."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyotp
from argon2 import PasswordHasher

from tests.backends import Clock, key_line
from voice_agent.audit import Actor, AuditTrail
from voice_agent.console.users import StaffStore

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
PASSWORD = "a long enough passphrase"
ADMIN = Actor(kind="staff", id="boss")
#: The ``keyring`` fixture's only key, ``ka``.
KEY_A = key_line("ka")


def cheap_hashes(store: StaffStore, hasher: PasswordHasher | None = None) -> StaffStore:
    """argon2 at a test's cost: production's (up to half a second a hash on a busy machine) is the point
    there, not here."""
    store._hasher = hasher or PasswordHasher(time_cost=1, memory_cost=8 * 1024, parallelism=1)
    store._dummy_hash = store._hasher.hash("not an account's password")
    return store


def events(trail: AuditTrail) -> list[dict[str, object]]:
    """Every event from the day before ``T0`` to the furthest the link-expiry tests move the clock."""
    return [row["event"] for row in trail.export(T0 - timedelta(days=1), T0 + timedelta(days=9))]


def enrol(staff: StaffStore, clock: Clock, username: str = "desk") -> str:
    """Enrol an existing account's TOTP app, as at its first login; returns the secret."""
    secret = staff.enrolment_secret(username)
    assert staff.finish_enrolment(username, pyotp.TOTP(secret).at(clock.now))[0].ok
    return secret
