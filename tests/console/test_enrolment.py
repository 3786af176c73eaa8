"""First enrolment through a one-time link, on SQLite and PostgreSQL with a controllable clock: the
administrator never knows a working credential; the link is stored only as an HMAC, works once (also
under two concurrent uses), expires, is superseded by a reset, and every step is audited without it."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyotp
import pytest
from sqlalchemy import Engine, select
from typer.testing import CliRunner

from tests.backends import Backend, Clock, key_line
from tests.console.common import ADMIN, PASSWORD, events
from voice_agent.audit import AuditTrail, Keyring
from voice_agent.cli import staff as staff_cli
from voice_agent.console import totp
from voice_agent.console.sessions import SessionStore
from voice_agent.console.users import (
    ENROLMENT_PURPOSE,
    EnrolmentLink,
    InvalidStaffInput,
    StaffStore,
    staff_enrolment_table,
    staff_users_table,
)


@pytest.fixture
def staff(trail: AuditTrail, keyring: Keyring, clock: Clock) -> StaffStore:
    return StaffStore(trail, keyring, enrolment_lifetime=timedelta(hours=24), clock=clock)


def code_for(staff: StaffStore, username: str, clock: Clock, later: int = 0) -> tuple[str, str]:
    secret = staff.enrolment_secret(username)
    return secret, pyotp.TOTP(secret).at(clock.now + timedelta(seconds=30 * later))


def test_an_invited_account_enrols_once_and_logs_in(
    staff: StaffStore, trail: AuditTrail, backend: Backend, raw: Engine, clock: Clock, keyring: Keyring
) -> None:
    user, link = staff.invite("desk", "front-desk", by=ADMIN)
    assert user.enrolment_pending and link.token not in repr(link)
    # no password works before enrolment (there is none), and such attempts lock nothing
    for guess in (PASSWORD, "", "!enrolment-pending"):
        assert staff.check_password("desk", guess).reason == "EnrolmentPending"
    assert staff.enrolment_account(link.token).ok

    secret, code = code_for(staff, "desk", clock)
    with pytest.raises(InvalidStaffInput):  # a weak password is refused and the link stays usable
        staff.complete_enrolment(link.token, "desk-is-my-password", code)
    assert staff.complete_enrolment(link.token, PASSWORD, "000000")[0].reason == "BadCode"
    check, codes = staff.complete_enrolment(link.token, PASSWORD, code)
    assert check.ok and len(codes) == 10 and check.user is not None and not check.user.enrolment_pending

    # used: refused however it comes back, and no second password can be set through it
    next_code = pyotp.TOTP(secret).at(clock.now + timedelta(seconds=30))
    again, _ = staff.complete_enrolment(link.token, "another long passphrase", next_code)
    assert again.reason == "EnrolmentLinkUsed" and not staff.enrolment_account(link.token).ok
    assert staff.check_password("desk", "another long passphrase").reason == "BadPassword"
    assert staff.check_password("desk", PASSWORD).ok
    assert staff.check_code("desk", next_code).ok

    # only the HMAC is stored: the token is in no table and in no audit record
    with raw.connect() as conn:
        stored = conn.execute(select(staff_enrolment_table)).all()
    assert [row.token_mac for row in stored] == [keyring.mac(link.token.encode(), purpose=ENROLMENT_PURPOSE)]
    assert link.token.encode() not in backend.raw_bytes()
    logged = events(trail)
    assert link.token not in repr(logged) and PASSWORD not in repr(logged)
    steps = [(e["action"], e.get("staff_change") or e.get("error"), e["outcome"]) for e in logged]
    assert ("staff.user.create", None, "success") in steps
    assert ("staff.user.update", "enrolment-link", "success") in steps
    assert ("staff.login", "EnrolmentPending", "denied") in steps
    assert ("staff.enrolment", "BadCode", "denied") in steps
    assert ("staff.enrolment", None, "success") in steps
    assert ("staff.enrolment", "EnrolmentLinkUsed", "denied") in steps
    issued = next(e for e in logged if e.get("staff_change") == "enrolment-link")
    assert issued["actor"] == {"kind": "staff", "id": "boss"} and issued["resource_ids"] == ["desk"]


def test_two_concurrent_uses_give_one_success(
    staff: StaffStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    _user, link = staff.invite("desk", "front-desk", by=ADMIN)
    _secret, code = code_for(staff, "desk", clock)
    start = threading.Barrier(2)
    # both uses pass every check (link unused, code right) before either writes: only the conditional
    # update that spends the link can tell them apart
    checked = threading.Barrier(2, timeout=20)
    make_codes = totp.new_recovery_codes

    def after_both_checked() -> list[str]:
        checked.wait()
        return make_codes()

    monkeypatch.setattr(totp, "new_recovery_codes", after_both_checked)
    results: list[str | None] = []

    def use(password: str) -> None:
        start.wait()
        check, _codes = staff.complete_enrolment(link.token, password, code)
        results.append(None if check.ok else check.reason)

    threads = [threading.Thread(target=use, args=(p,)) for p in (PASSWORD, "the other long passphrase")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(map(str, results)) == ["EnrolmentLinkUsed", "None"]
    winners = [p for p in (PASSWORD, "the other long passphrase") if staff.check_password("desk", p).ok]
    assert len(winners) == 1


def test_an_expired_link_is_refused(staff: StaffStore, trail: AuditTrail, clock: Clock) -> None:
    _user, link = staff.invite("desk", "front-desk", by=ADMIN)
    _secret, code = code_for(staff, "desk", clock)
    clock.advance(hours=24)  # expires_at is exclusive
    assert staff.enrolment_account(link.token).reason == "EnrolmentLinkExpired"
    assert staff.complete_enrolment(link.token, PASSWORD, code)[0].reason == "EnrolmentLinkExpired"
    assert staff.check_password("desk", PASSWORD).reason == "EnrolmentPending"
    refused = [e for e in events(trail) if e.get("error") == "EnrolmentLinkExpired"]
    assert len(refused) == 2 and all(e["resource_ids"] == ["desk"] for e in refused)
    # the administrator issues a fresh one
    fresh = staff.reset("desk", by=ADMIN)
    assert staff.complete_enrolment(fresh.token, PASSWORD, code_for(staff, "desk", clock)[1])[0].ok


def test_a_reset_voids_the_old_password_link_and_sessions(
    staff: StaffStore, trail: AuditTrail, keyring: Keyring, clock: Clock
) -> None:
    sessions = SessionStore(
        trail, keyring, idle=timedelta(minutes=15), max_age=timedelta(hours=12), clock=clock
    )
    _user, first = staff.invite("desk", "front-desk", by=ADMIN)
    superseding = staff.reset("desk", by=ADMIN)  # a newer link: the first is void before any use
    assert staff.enrolment_account(first.token).reason == "UnknownEnrolmentLink"
    assert staff.complete_enrolment(superseding.token, PASSWORD, code_for(staff, "desk", clock)[1])[0].ok
    assert staff.check_password("desk", PASSWORD).ok
    token = sessions.open("desk", "full")

    clock.advance(minutes=1)
    link = staff.reset("desk", by=ADMIN)
    assert isinstance(link, EnrolmentLink) and link.token != superseding.token
    assert staff.check_password("desk", PASSWORD).reason == "EnrolmentPending"  # the old password is void
    assert sessions.get(token) is None  # and the browser signed in before the reset is signed out
    user = staff.user("desk")
    assert user is not None and user.enrolment_pending and not user.enrolled
    assert staff.enrolment_account(superseding.token).reason == "UnknownEnrolmentLink"
    # the old TOTP secret is gone too: the new enrolment shows a new one
    _new_secret, code = code_for(staff, "desk", clock)
    assert staff.complete_enrolment(link.token, "a brand new passphrase", code)[0].ok
    assert staff.check_password("desk", "a brand new passphrase").ok
    changes = [e.get("staff_change") for e in events(trail) if e["action"] == "staff.user.update"]
    assert changes.count("enrolment-reset") == 2 and changes.count("enrolment-link") == 3
    unknown = [e for e in events(trail) if e.get("error") == "UnknownEnrolmentLink"]
    assert unknown and all(not e.get("resource_ids") and e["actor"]["kind"] == "service" for e in unknown)  # type: ignore[index]


def test_refused_links_and_accounts(staff: StaffStore, raw: Engine, clock: Clock) -> None:
    _user, link = staff.invite("desk", "front-desk", by=ADMIN)
    for token in ("", "x" * 43, link.token[:-1], link.token + "A", "../../admin"):
        assert staff.enrolment_account(token).reason == "UnknownEnrolmentLink"
    staff.change("desk", "disable", by=ADMIN)
    assert staff.enrolment_account(link.token).reason == "AccountDisabled"
    with pytest.raises(InvalidStaffInput):
        staff.change("desk", "password", by=ADMIN)  # no longer a change an administrator makes
    with raw.connect() as conn:
        hashes = conn.execute(select(staff_users_table.c.password_hash)).scalars().all()
    assert hashes == ["!enrolment-pending"]


def test_the_command_line_prints_a_link_once_and_never_asks_for_a_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``voice-agent staff add-user`` (the first administrator) and ``reset-user``: a link, no password."""
    keys = key_line("kc")
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    monkeypatch.setenv("VOICE_AGENT_AUDIT_DATABASE_URL", url)
    monkeypatch.setenv("VOICE_AGENT_AUDIT_KEYS", keys)
    runner = CliRunner()
    added = runner.invoke(staff_cli.app, ["add-user", "alice", "--base-url", "https://console.example/"])
    assert added.exit_code == 0, added.output
    first = [
        line for line in added.output.splitlines() if line.startswith("https://console.example/staff/enrol/")
    ]
    assert len(first) == 1 and "(24 h)" in added.output
    reset = runner.invoke(staff_cli.app, ["reset-user", "alice", "--base-url", "https://console.example"])
    assert reset.exit_code == 0, reset.output
    second = [line for line in reset.output.splitlines() if "/staff/enrol/" in line]
    assert len(second) == 1 and second != first
    assert runner.invoke(staff_cli.app, ["reset-user", "nobody"]).exit_code == 1
    assert "--password" not in runner.invoke(staff_cli.app, ["add-user", "--help"]).output

    keyring = Keyring.from_string(keys)
    with AuditTrail.open(url, keyring) as trail:
        store = StaffStore(trail, keyring)
        assert store.enrolment_account(first[0].rsplit("/", 1)[1]).reason == "UnknownEnrolmentLink"
        check = store.enrolment_account(second[0].rsplit("/", 1)[1])
        assert check.ok and check.user is not None and check.user.role == "admin"
        logged = [
            row["event"]
            for row in trail.export(
                datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC) + timedelta(hours=1)
            )
        ]
    issued = [e for e in logged if e.get("staff_change") == "enrolment-link"]
    assert len(issued) == 2 and all(e["actor"] == {"kind": "service", "id": "voice-agent"} for e in issued)
