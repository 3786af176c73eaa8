"""Staff rows the console trusts carry a MAC under the audit keys, on SQLite and PostgreSQL: a role raised
in SQL is refused at the next request and at login, and alerted; a recovery code written in SQL logs
nobody in, and is alerted; the administrator's reset repairs the account; a correct row round-trips,
also under a rotated key; rows from before the tag columns are tagged once, audited, and keep working.
The encoding itself: ``test_row_encoding_is_unambiguous``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import pyotp
import pytest
from sqlalchemy import Engine, text

from tests.backends import Backend, Clock, key_line
from tests.console.common import ADMIN, KEY_A, PASSWORD, T0, cheap_hashes, enrol, events
from voice_agent.audit import AuditTrail, Keyring
from voice_agent.audit.alerts import Signals
from voice_agent.audit.row_integrity import RowSeal, Verdict
from voice_agent.console import totp
from voice_agent.console.sessions import SessionStore
from voice_agent.console.users import AccountTampered, StaffStore


def staff_store(trail: AuditTrail, keyring: Keyring, clock: Clock) -> StaffStore:
    return cheap_hashes(StaffStore(trail, keyring, clock=clock))


def enrolled(store: StaffStore, clock: Clock) -> str:
    """The account ``desk`` with a password and TOTP, as after its first login; returns the TOTP secret."""
    store.add_user("desk", "front-desk", PASSWORD)
    return enrol(store, clock)


def with_recovery_codes(store: StaffStore, clock: Clock) -> list[str]:
    """The account ``desk``, enrolled; returns its ten recovery codes."""
    store.add_user("desk", "front-desk", PASSWORD)
    secret = store.enrolment_secret("desk")
    check, codes = store.finish_enrolment("desk", pyotp.TOTP(secret).at(clock.now))
    assert check.ok and len(codes) == 10
    return codes


def test_a_role_raised_in_sql_is_refused_and_alerted(
    trail: AuditTrail, keyring: Keyring, clock: Clock, raw: Engine
) -> None:
    staff = staff_store(trail, keyring, clock)
    secret = enrolled(staff, clock)
    sessions = SessionStore(
        trail, keyring, idle=timedelta(minutes=15), max_age=timedelta(hours=12), clock=clock
    )
    token = sessions.open("desk", "full")
    session = sessions.get(token)
    assert session is not None and session.user.role == "front-desk"

    with raw.begin() as conn:
        conn.execute(text("UPDATE staff_users SET role = 'admin' WHERE username = 'desk'"))

    assert sessions.get(token) is None  # the next request: signed out, the session row gone
    assert sessions.get(token) is None
    assert not staff.check_password("desk", PASSWORD).ok  # and no new login
    clock.advance(seconds=30)
    assert not staff.check_code("desk", pyotp.TOTP(secret).at(clock.now)).ok
    with pytest.raises(AccountTampered):
        staff.change("desk", "enable", by=ADMIN)
    [listed] = staff.users()  # the administrator sees it, refused, never as an administrator
    assert listed.tampered and listed.disabled and listed.role == "front-desk"

    alerts = Signals(trail, keyring).recent(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert [a.kind for a in alerts] == ["record-tampered"]  # once per row and hour, however often read
    raised = [e for e in events(trail) if e.get("alert") == "record-tampered"]
    assert len(raised) == 1 and raised[0]["resource_ids"] == ["desk"] and raised[0]["error"] == "BadRowMac"
    assert "admin" not in repr(raised)

    # the administrator's reset repairs it: least privilege, a new enrolment link, a valid tag
    staff.reset("desk", by=ADMIN)
    repaired = staff.user("desk")
    assert repaired is not None and not repaired.tampered and repaired.role == "front-desk"
    changes = [e for e in events(trail) if e.get("staff_change") == "role"]
    assert changes[-1]["staff_role"] == "front-desk" and changes[-1]["actor"] == {
        "kind": "staff",
        "id": "boss",
    }


def test_a_session_row_changed_in_sql_is_no_session(
    trail: AuditTrail, keyring: Keyring, clock: Clock, raw: Engine
) -> None:
    """Someone with their own half-open session (the password, not the code) and the database makes it
    "full", or points it at the administrator: neither opens anything."""
    staff = staff_store(trail, keyring, clock)
    staff.add_user("desk", "front-desk", PASSWORD)
    staff.add_user("boss", "admin", PASSWORD)
    sessions = SessionStore(
        trail, keyring, idle=timedelta(minutes=15), max_age=timedelta(hours=12), clock=clock
    )
    half, full = sessions.open("desk", "password"), sessions.open("desk", "full")
    with raw.begin() as conn:
        conn.execute(text("UPDATE staff_sessions SET stage = 'full' WHERE stage = 'password'"))
        conn.execute(text("UPDATE staff_sessions SET username = 'boss' WHERE stage = 'full'"))
    assert sessions.get(half) is None and sessions.get(full) is None
    assert sessions.get(sessions.open("boss", "full")) is not None  # the accounts themselves are intact
    raised = [e for e in events(trail) if e.get("alert") == "record-tampered"]
    assert [e["resource_ids"] for e in raised] == [["boss"]]  # one alert per account and hour


def test_a_correct_row_round_trips_also_under_a_rotated_key(
    trail: AuditTrail, clock: Clock, raw: Engine
) -> None:
    old = Keyring.from_string(KEY_A)
    enrolled(staff_store(trail, old, clock), clock)
    rotated = Keyring.from_string(f"{KEY_A};{key_line('kb')}")  # kb active, ka kept
    staff = staff_store(trail, rotated, clock)
    assert staff.check_password("desk", PASSWORD).ok  # tagged under ka, still verifies
    staff.change("desk", "role", by=ADMIN, role="compliance")
    with raw.connect() as conn:
        key_id = conn.execute(text("SELECT mac_key_id FROM staff_users WHERE username = 'desk'")).scalar()
    assert key_id == "kb"  # re-tagged under the active key at its next write
    user = staff.user("desk")
    assert user is not None and user.role == "compliance" and not user.tampered
    # a keyring that lost the key a row was tagged under cannot vouch for it: refused, not trusted
    alone = Keyring.from_string(key_line("ka"))
    assert staff_store(trail, alone, clock).user_row("desk") is None


def test_rows_from_before_the_tags_are_tagged_once_and_audited(
    backend: Backend, trail: AuditTrail, keyring: Keyring, clock: Clock, raw: Engine
) -> None:
    staff = staff_store(trail, keyring, clock)
    staff.add_user("desk", "front-desk", PASSWORD)
    with raw.begin() as conn:  # the table as it was before this change
        conn.execute(text("ALTER TABLE staff_users DROP COLUMN mac"))
        conn.execute(text("ALTER TABLE staff_users DROP COLUMN mac_key_id"))
    reopened = staff_store(trail, keyring, clock)  # adds the columns and tags what is there
    assert reopened.check_password("desk", PASSWORD).ok
    staff_store(trail, keyring, clock)  # once: a second start tags nothing more
    seals = [e for e in events(trail) if e["action"] == "record.seal"]
    assert len(seals) == 1 and seals[0]["resource_ids"] == ["desk"] and seals[0]["event_count"] == 1
    # afterwards a row without a tag is refused like a forged one
    with raw.begin() as conn:
        conn.execute(text("UPDATE staff_users SET mac = NULL WHERE username = 'desk'"))
    assert not reopened.check_password("desk", PASSWORD).ok


def test_a_recovery_code_written_in_sql_logs_nobody_in(
    trail: AuditTrail, keyring: Keyring, clock: Clock, raw: Engine
) -> None:
    """Someone who knows the password and can write the database, but not read the key file, adds a
    recovery code they know: a bare row, one with a genuine row's tag copied, or a genuine row's digest
    changed to theirs. None skips the second factor; the real codes still work, once each."""
    staff = staff_store(trail, keyring, clock)
    codes = with_recovery_codes(staff, clock)
    theirs = totp.new_recovery_codes()[:3]
    bare, copied, changed = (totp.recovery_digest(code) for code in theirs)
    with raw.begin() as conn:
        key_id, tag = conn.execute(text("SELECT mac_key_id, mac FROM staff_recovery_codes LIMIT 1")).one()
        insert = text(
            "INSERT INTO staff_recovery_codes (username, digest, mac_key_id, mac) VALUES ('desk', :d, :k, :m)"
        )
        conn.execute(insert, {"d": bare, "k": None, "m": None})
        conn.execute(insert, {"d": copied, "k": key_id, "m": tag})
        conn.execute(
            text("UPDATE staff_recovery_codes SET digest = :d WHERE digest = :old"),
            {"d": changed, "old": totp.recovery_digest(codes[9])},
        )
    assert staff.check_password("desk", PASSWORD).ok  # the password is theirs...
    assert [staff.check_code("desk", code).reason for code in theirs] == ["BadCode"] * 3  # ...the codes not
    assert staff.check_code("desk", codes[9]).reason == "BadCode"  # its row now holds another digest

    alerts = Signals(trail, keyring).recent(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert [a.kind for a in alerts] == ["record-tampered"]  # once per account and hour
    raised = [e for e in events(trail) if e.get("alert") == "record-tampered"]
    assert len(raised) == 1 and raised[0]["resource_ids"] == ["desk"] and raised[0]["error"] == "UnsealedRow"
    assert staff.check_code("desk", codes[0]).ok  # a real code still works...
    assert staff.check_code("desk", codes[0]).reason == "BadCode"  # ...once
    used = [e for e in events(trail) if e.get("staff_change") == "recovery-code-used"]
    assert len(used) == 1 and not any(code in repr(events(trail)) for code in (*codes, *theirs))


def test_recovery_codes_from_before_their_tags_keep_working(
    trail: AuditTrail, keyring: Keyring, clock: Clock, raw: Engine
) -> None:
    """Their digests cannot become HMACs (nobody has the codes), so the upgrade tags the rows instead:
    once, audited, and the codes issued before it still work; afterwards an untagged row opens nothing."""
    codes = with_recovery_codes(staff_store(trail, keyring, clock), clock)
    with raw.begin() as conn:  # the table as it was before its tags
        conn.execute(text("ALTER TABLE staff_recovery_codes DROP COLUMN mac"))
        conn.execute(text("ALTER TABLE staff_recovery_codes DROP COLUMN mac_key_id"))
    staff = staff_store(trail, keyring, clock)  # adds the columns and tags what is there
    assert staff.check_code("desk", codes[0]).ok
    staff_store(trail, keyring, clock)  # once: a second start tags nothing more
    seals = [e for e in events(trail) if e["action"] == "record.seal"]
    assert [(e["staff_change"], e["resource_ids"], e["event_count"]) for e in seals] == [
        ("recovery-codes", ["desk"], 1)  # the account, not its ten digests
    ]
    theirs = totp.new_recovery_codes()[0]
    with raw.begin() as conn:
        conn.execute(
            text("INSERT INTO staff_recovery_codes (username, digest) VALUES ('desk', :d)"),
            {"d": totp.recovery_digest(theirs)},
        )
    assert staff.check_code("desk", theirs).reason == "BadCode"
    assert staff.check_code("desk", codes[1]).ok


def test_row_encoding_is_unambiguous(keyring: Keyring) -> None:
    seal = RowSeal("staff-account", ("a", "b"))
    other = RowSeal("escalation", ("a", "b"))
    rows: list[dict[str, object]] = [
        {"a": "ab", "b": "c"},
        {"a": "a", "b": "bc"},
        {"a": None, "b": "c"},
        {"a": "", "b": "c"},
        {"a": True, "b": "c"},
        {"a": 1, "b": "c"},
        {"a": "1", "b": "c"},
        {"a": b"ab", "b": "c"},
        {"a": UUID(int=1), "b": "c"},
        {"a": str(UUID(int=1)), "b": "c"},
    ]
    messages = {seal.message(row) for row in rows}
    assert len(messages) == len(rows)
    assert seal.message(rows[0]) != other.message(rows[0])
    row = {"a": datetime(2025, 3, 3, 9, 0), "b": "c"}
    tagged = {**row, **seal.tag(keyring, row)}
    assert seal.check(keyring, tagged) is Verdict.OK
    # the same moment, naive UTC as stored or aware: one encoding
    assert seal.check(keyring, {**tagged, "a": datetime(2025, 3, 3, 9, 0, tzinfo=UTC)}) is Verdict.OK
    assert other.check(keyring, tagged) is Verdict.BAD_MAC  # a tag for one purpose is not for another
    assert seal.check(keyring, {**tagged, "b": "d"}) is Verdict.BAD_MAC
    assert seal.check(keyring, {**tagged, "b": 1.5}) is Verdict.BAD_MAC  # a type never written: refused
    assert seal.check(keyring, {**tagged, "mac_key_id": "zz"}) is Verdict.UNKNOWN_KEY
    assert seal.check(keyring, {**row, "mac_key_id": None, "mac": None}) is Verdict.UNSEALED
