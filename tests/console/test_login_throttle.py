"""Login abuse and session safety, on SQLite and PostgreSQL with a controllable clock: an outsider's
guesses slow only the outsider and cannot lock the desk out; every refusal costs one password hash and is
audited; a TOTP code logs in once even when submitted twice at the same moment; a session row made
without the audit key opens nothing; a change to an account's credentials or role ends its sessions; a
burst of refusals is an alert. (The same, seen from a browser: ``test_console_browser.py``.)"""

from __future__ import annotations

import hashlib
import secrets
import threading
from datetime import timedelta
from ipaddress import ip_network
from typing import Literal

import pyotp
import pytest
from argon2 import PasswordHasher
from pydantic import ValidationError
from sqlalchemy import Engine, insert
from starlette.requests import Request

from tests.backends import Clock, key_line
from tests.console.common import ADMIN, KEY_A, PASSWORD, T0, cheap_hashes, enrol, events
from voice_agent.audit import AuditTrail, Keyring, StaffChange
from voice_agent.audit.alerts import ALERT_RULES, Signals
from voice_agent.audit.store import to_db_time
from voice_agent.console import totp
from voice_agent.console.auth import Auth
from voice_agent.console.csrf import Csrf
from voice_agent.console.sessions import SessionStore, staff_sessions_table
from voice_agent.console.throttle import Logins, LoginThrottle
from voice_agent.console.users import StaffStore
from voice_agent.settings import Settings

DESK, OUTSIDE, ELSEWHERE = "10.1.2.3", "203.0.113.9", "198.51.100.4"


class CountingHasher(PasswordHasher):
    """argon2 at ``cheap_hashes``' cost, counting every verify."""

    def __init__(self) -> None:
        super().__init__(time_cost=1, memory_cost=8 * 1024, parallelism=1)
        self.verified: list[str] = []

    def verify(self, hash: str | bytes, password: str | bytes) -> Literal[True]:
        self.verified.append(hash if isinstance(hash, str) else hash.decode())
        return super().verify(hash, password)


@pytest.fixture
def staff(trail: AuditTrail, keyring: Keyring, clock: Clock) -> StaffStore:
    store = cheap_hashes(
        StaffStore(trail, keyring, lockout_threshold=5, lockout=timedelta(minutes=15), clock=clock),
        CountingHasher(),
    )
    for name in ("desk", "boss"):
        store.add_user(name, "admin" if name == "boss" else "front-desk", PASSWORD)
    return store


@pytest.fixture
def logins(staff: StaffStore, trail: AuditTrail, keyring: Keyring, clock: Clock) -> Logins:
    throttle = LoginThrottle(
        trail, keyring, threshold=5, backoff=timedelta(seconds=30), cap=timedelta(minutes=15), clock=clock
    )
    return Logins(staff, throttle)


@pytest.fixture
def sessions(trail: AuditTrail, keyring: Keyring, clock: Clock) -> SessionStore:
    return SessionStore(trail, keyring, idle=timedelta(minutes=15), max_age=timedelta(hours=12), clock=clock)


def next_code(secret: str, clock: Clock) -> str:
    """The code of the next 30-second step (each step logs in once)."""
    clock.advance(seconds=30)
    return pyotp.TOTP(secret).at(clock.now)


def test_an_outsider_cannot_lock_out_the_desk(
    logins: Logins, staff: StaffStore, trail: AuditTrail, clock: Clock
) -> None:
    secret = enrol(staff, clock)
    assert logins.password("desk", PASSWORD, DESK).ok  # the desk signs in from its own address
    assert logins.code("desk", next_code(secret, clock), DESK).ok

    # an outsider guesses from one address: after five refusals that address must wait, and each
    # attempt meanwhile is refused before any account is checked
    reasons = [logins.password("desk", f"guess number {n}", OUTSIDE).reason for n in range(7)]
    assert reasons == ["BadPassword"] * 4 + ["AccountLocked"] + ["SourceThrottled"] * 2
    assert logins.password("mary.smith", "guess number 8", OUTSIDE).reason == "SourceThrottled"
    assert logins.throttle.wait(OUTSIDE) == timedelta(seconds=30)

    # the desk signs in as usual: its address proved itself for the account, and is not the outsider's
    assert logins.password("desk", PASSWORD, DESK).ok
    assert logins.code("desk", pyotp.TOTP(secret).at(clock.now + timedelta(seconds=30)), DESK).ok
    # the account's lock holds against every other address, even with the right password
    assert logins.password("desk", PASSWORD, ELSEWHERE).reason == "AccountLocked"

    # the outsider's wait grows with each failure after it: 30 s, then 60 s, then 120 s
    clock.advance(seconds=30)
    assert logins.password("desk", "guess number 9", OUTSIDE).reason == "AccountLocked"
    assert logins.throttle.wait(OUTSIDE) == timedelta(seconds=60)
    clock.advance(seconds=60)
    assert logins.password("desk", "guess number 10", OUTSIDE).reason == "AccountLocked"
    assert logins.throttle.wait(OUTSIDE) == timedelta(seconds=120)
    assert logins.throttle.wait(DESK) == timedelta(0) == logins.throttle.wait(ELSEWHERE)

    # an administrator lifts the account's lock
    staff.change("desk", "unlock", by=ADMIN)
    assert logins.password("desk", PASSWORD, ELSEWHERE).ok

    # every refusal is audited; a name that is no account is not written down, throttled or not
    denied = [e for e in events(trail) if e["action"] == "staff.login" and e["outcome"] == "denied"]
    assert len(denied) == 7 + 1 + 1 + 2
    assert sum(1 for e in denied if e.get("error") == "SourceThrottled") == 3
    unknown = [e for e in denied if e["actor"]["kind"] == "service"]  # type: ignore[index]
    assert len(unknown) == 1 and not unknown[0].get("resource_ids")
    assert "mary" not in repr(events(trail))


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # the database plays no part here
def test_every_refusal_costs_one_password_hash(logins: Logins, staff: StaffStore) -> None:
    """How long a refusal takes says nothing about the name: unknown, wrong password, locked, disabled
    and not-yet-enrolled all run exactly one argon2 verify (a waiting address runs none, whatever the
    name: its refusal depends on the address only)."""
    staff.invite("newbie", "front-desk", by=ADMIN)
    for _ in range(5):
        staff.check_password("desk", "wrong password!")  # locked now
    staff.change("boss", "disable", by=ADMIN)
    assert isinstance(staff._hasher, CountingHasher)
    verifies = staff._hasher.verified
    for n, (name, reason) in enumerate(
        [
            ("nobody", "UnknownUser"),
            ("desk", "AccountLocked"),
            ("boss", "AccountDisabled"),
            ("newbie", "EnrolmentPending"),
        ]
    ):
        verifies.clear()
        assert logins.password(name, PASSWORD, f"192.0.2.{n}").reason == reason
        assert len(verifies) == 1 and verifies[0].startswith("$argon2id"), name
    staff.change("desk", "unlock", by=ADMIN)
    verifies.clear()
    assert logins.password("desk", "wrong password!", "192.0.2.99").reason == "BadPassword"
    assert len(verifies) == 1
    for _ in range(5):
        logins.password("nobody", "x", OUTSIDE)
    verifies.clear()
    assert logins.password("desk", PASSWORD, OUTSIDE).reason == "SourceThrottled"
    assert logins.password("nobody", PASSWORD, OUTSIDE).reason == "SourceThrottled"
    assert verifies == []


def test_one_totp_code_submitted_twice_at_once_logs_in_once(
    staff: StaffStore, trail: AuditTrail, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = enrol(staff, clock)
    code = next_code(secret, clock)
    # both submissions check the code (valid, step not used yet) before either writes: only the
    # conditional update that spends the step can tell them apart
    checked = threading.Barrier(2, timeout=20)
    accepted_step = totp.accepted_step

    def after_both_checked(*args: object) -> int | None:
        step = accepted_step(*args)  # type: ignore[arg-type]
        checked.wait()
        return step

    monkeypatch.setattr(totp, "accepted_step", after_both_checked)
    results: list[str | None] = []

    def submit() -> None:
        check = staff.check_code("desk", code)
        results.append(None if check.ok else check.reason)

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(map(str, results)) == ["BadCode", "None"]
    logged = [e for e in events(trail) if e["action"] == "staff.login"]
    assert [e["outcome"] for e in logged] == ["success", "success", "denied"]  # enrolment, one, replay


def test_a_session_row_made_without_the_key_opens_nothing(
    sessions: SessionStore, staff: StaffStore, raw: Engine, trail: AuditTrail, clock: Clock
) -> None:
    """Someone who can write the database but not read the key file inserts session rows: the old
    unkeyed SHA-256 of a token, or an HMAC under a key of their own. Neither is a session."""
    token = secrets.token_urlsafe(32)
    theirs = SessionStore(
        trail, Keyring.from_string(key_line("ka")), idle=sessions.idle, max_age=sessions.max_age, clock=clock
    )
    forged = [
        hashlib.sha256(f"voice-agent staff session v1|{token}".encode()).hexdigest(),
        theirs.digest(token),
    ]
    now = to_db_time(clock.now)
    with raw.begin() as conn:
        for token_hash in forged:
            conn.execute(
                insert(staff_sessions_table).values(
                    token_hash=token_hash, username="boss", stage="full", created_at=now, last_seen=now
                )
            )
    assert sessions.get(token) is None
    genuine = sessions.open("boss", "full")
    assert sessions.get(genuine) is not None
    # a key rotation (a new active key, the old one kept) does not sign anyone out
    rotated = Keyring.from_string(f"{KEY_A};{key_line('kb')}")
    after = SessionStore(trail, rotated, idle=sessions.idle, max_age=sessions.max_age, clock=clock)
    assert after.get(genuine) is not None and after.get(after.open("boss", "full")) is not None


def test_credential_and_role_changes_end_the_accounts_sessions(
    sessions: SessionStore, staff: StaffStore, trail: AuditTrail, clock: Clock
) -> None:
    mine = sessions.open("boss", "full")
    changes: tuple[StaffChange, ...] = ("role", "totp-reset", "disable")
    for change in changes:
        staff.change("desk", "enable", by=ADMIN)
        browsers = [sessions.open("desk", "full"), sessions.open("desk", "password")]
        clock.advance(minutes=1)
        staff.change("desk", change, by=ADMIN, role="compliance")
        assert [sessions.get(t) for t in browsers] == [None, None], change
    assert sessions.get(mine) is not None  # another account's session is untouched
    staff.change("desk", "enable", by=ADMIN)
    browser = sessions.open("desk", "full")
    staff.reset("desk", by=ADMIN)  # the administrator's password reset
    assert sessions.get(browser) is None
    # an administrator resetting their own second factor keeps the session they do it from
    other = sessions.open("boss", "full")
    current = sessions.get(mine)
    assert current is not None
    staff.change("boss", "totp-reset", by=ADMIN, current_session=current.token_hash)
    assert sessions.get(mine) is not None and sessions.get(other) is None
    # re-enrolling ends the account's other sessions too, but not the one enrolling
    enrolling = sessions.get(sessions.open("boss", "password"))
    assert enrolling is not None
    secret = staff.enrolment_secret("boss")
    check, _codes = staff.finish_enrolment(
        "boss", pyotp.TOTP(secret).at(clock.now), session=enrolling.token_hash
    )
    assert check.ok and sessions.get(mine) is None
    assert sessions.upgrade(enrolling) is not None

    ends = [e for e in events(trail) if e["action"] == "staff.logout"]
    assert [(e["actor"]["id"], e["staff_change"]) for e in ends] == [  # type: ignore[index]
        ("desk", "role"),
        ("desk", "totp-reset"),
        ("desk", "disable"),
        ("desk", "enrolment-reset"),
        ("boss", "totp-reset"),
        ("boss", "totp-enrolled"),
    ]
    assert all(e["end_reason"] == "revoked" and e["outcome"] == "success" for e in ends)
    assert ends[0]["duration_seconds"] == 60.0


def test_a_burst_of_refused_logins_is_an_alert(trail: AuditTrail, keyring: Keyring, clock: Clock) -> None:
    signals = Signals(trail, keyring, clock=clock)
    signals.create()
    rule = ALERT_RULES["staff-login-failure"]
    raised = []
    for _ in range(rule.count + 5):
        clock.advance(seconds=10)
        raised.append(signals.record("staff-login-failure"))
    assert raised.index("staff-login-burst") == rule.count - 1
    assert raised.count("staff-login-burst") == 1  # once per window
    assert [a.kind for a in signals.recent(T0, clock.now)] == ["staff-login-burst"]


def test_the_source_is_the_client_a_trusted_proxy_names(keyring: Keyring) -> None:
    def source(proxies: list[str], peer: str, forwarded: str | None) -> str | None:
        settings = Settings(staff_trusted_proxies=[ip_network(p) for p in proxies])
        auth = Auth(settings, None, Csrf(keyring))  # type: ignore[arg-type]  # sessions unused here
        headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded is not None else []
        scope = {"type": "http", "client": (peer, 5000), "headers": headers}
        return auth.source(Request(scope))

    assert source([], "10.0.0.5", "203.0.113.9") == "10.0.0.5"  # no trusted proxy: the peer
    assert source(["10.0.0.5/32"], "10.0.0.5", "203.0.113.9") == "203.0.113.9"
    # what a client wrote itself is left of what the proxy added: never reached
    assert source(["10.0.0.5/32"], "10.0.0.5", "1.2.3.4, 203.0.113.9") == "203.0.113.9"
    assert source(["10.0.0.0/24"], "10.0.0.5", "203.0.113.9, 10.0.0.7") == "203.0.113.9"
    assert source(["10.0.0.5/32"], "198.51.100.4", "203.0.113.9") == "198.51.100.4"  # not the proxy
    assert source(["10.0.0.5/32"], "10.0.0.5", "not-an-address") == "10.0.0.5"
    assert source(["10.0.0.5/32"], "10.0.0.5", None) == "10.0.0.5"
    with pytest.raises(ValidationError):  # trusting everyone would let any client choose its address
        Settings(staff_trusted_proxies=[ip_network("0.0.0.0/0")])
