"""Staff accounts and console sessions on their own (SQLite, a controllable clock): the lockout, TOTP used
once, recovery codes used once, the automatic logoff, and what the audit trail says about each."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pyotp
import pytest
from pydantic import ValidationError

from tests.backends import Clock
from tests.console.common import PASSWORD, events
from voice_agent.audit import AuditTrail, Keyring
from voice_agent.console.sessions import SessionStore
from voice_agent.console.users import InvalidStaffInput, StaffStore
from voice_agent.settings import DEFAULT_IDLE_TIMEOUT_SECONDS, Settings


@pytest.fixture
def trail(tmp_path: Path, keyring: Keyring, clock: Clock) -> Iterator[AuditTrail]:
    """SQLite only: these are the account rules (test_login_throttle.py and the others run both)."""
    with AuditTrail.open(f"sqlite:///{tmp_path / 'audit.db'}", keyring, clock=clock) as opened:
        yield opened


@pytest.fixture
def staff(trail: AuditTrail, keyring: Keyring, clock: Clock) -> StaffStore:
    store = StaffStore(trail, keyring, lockout_threshold=3, lockout=timedelta(minutes=15), clock=clock)
    store.add_user("desk", "front-desk", PASSWORD)
    return store


def test_account_rules(staff: StaffStore) -> None:
    for name, password in [
        ("Desk2", PASSWORD),
        ("555-123-4567", PASSWORD),
        ("desk2", "short"),
        ("desk2", "desk2" * 4),
    ]:
        with pytest.raises(InvalidStaffInput):
            staff.add_user(name, "front-desk", password)
    with pytest.raises(InvalidStaffInput):
        staff.add_user("desk2", "superuser", PASSWORD)


def test_lockout_after_repeated_failures(staff: StaffStore, trail: AuditTrail, clock: Clock) -> None:
    assert staff.check_password("desk", PASSWORD).ok
    assert [staff.check_password("desk", "wrong password!").reason for _ in range(3)] == [
        "BadPassword",
        "BadPassword",
        "AccountLocked",
    ]
    assert staff.check_password("desk", PASSWORD).reason == "AccountLocked"  # even the right one
    clock.advance(minutes=16)
    assert staff.check_password("desk", PASSWORD).ok
    logged = events(trail)
    assert any(e.get("staff_change") == "locked" and e["resource_ids"] == ["desk"] for e in logged)
    # a name that is no account is audited without the name (it could be anything someone typed)
    assert staff.check_password("Mary Smith", PASSWORD).reason == "UnknownUser"
    unknown = [e for e in events(trail) if e.get("error") == "UnknownUser"]
    assert unknown and all(not e.get("resource_ids") and e["actor"]["kind"] == "service" for e in unknown)  # type: ignore[index]


def test_totp_codes_and_recovery_codes_work_once(staff: StaffStore, clock: Clock, trail: AuditTrail) -> None:
    secret = staff.enrolment_secret("desk")
    check, codes = staff.finish_enrolment("desk", pyotp.TOTP(secret).at(clock.now))
    assert check.ok
    assert staff.check_code("desk", pyotp.TOTP(secret).at(clock.now)).reason == "BadCode"  # replayed
    assert staff.check_code("desk", pyotp.TOTP(secret).at(clock.now + timedelta(seconds=30))).ok
    assert staff.check_code("desk", codes[0].upper()).ok
    assert staff.check_code("desk", codes[0]).reason == "BadCode"  # used up
    changes = [e.get("staff_change") for e in events(trail)]
    assert "totp-enrolled" in changes and "recovery-code-used" in changes
    text = repr(events(trail))
    assert secret not in text and codes[1] not in text


def test_idle_sessions_end_and_are_audited(
    staff: StaffStore, trail: AuditTrail, keyring: Keyring, clock: Clock
) -> None:
    sessions = SessionStore(
        trail, keyring, idle=timedelta(minutes=15), max_age=timedelta(hours=12), clock=clock
    )
    token = sessions.open("desk", "full")
    session = sessions.get(token)
    assert session is not None and sessions.remaining(session) == timedelta(minutes=15)
    clock.advance(minutes=10)
    sessions.touch(session)
    clock.advance(minutes=10)
    assert sessions.get(token) is not None  # touched 10 minutes ago
    clock.advance(minutes=6)
    assert sessions.sweep() == 1 and sessions.get(token) is None
    ends = [e for e in events(trail) if e["action"] == "staff.logout"]
    assert len(ends) == 1 and ends[0]["end_reason"] == "timeout"
    assert token not in repr(events(trail))


def test_console_settings_fail_loudly() -> None:
    assert Settings().staff_idle_timeout_seconds == DEFAULT_IDLE_TIMEOUT_SECONDS == 15 * 60
    assert Settings().escalation_retention_days == 30
    for bad in (
        {"staff_session_cookie": "staff"},  # not __Host-: the browser would not insist on Secure
        {"staff_session_cookie": "__Host-x", "staff_login_cookie": "__Host-x"},
        {"staff_idle_timeout_seconds": 0},
        {"staff_lockout_threshold": 1},
        {"escalation_retention_days": 0},
    ):
        with pytest.raises(ValidationError):
            Settings(**bad)
