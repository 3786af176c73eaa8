"""Login throttling per source address and per account, built so that neither can lock out the front desk.

The old rule (five bad passwords lock any account for 15 minutes, from anywhere) let anyone who can reach
``/staff`` keep the front desk locked out. Two limits replace it:

* **Per source address.** Every refused login step from an address counts (whatever name it tried). After
  ``threshold`` in the window, the address must wait ``backoff`` after its latest failure before it may
  try again, doubling with each further failure up to ``cap``. A waiting address is refused before any
  account is looked at: its attempts cost no password hash and change nothing on any account.
* **Per account.** The account's own lock (``staff_lockout_threshold`` failures lock it for
  ``staff_lockout_seconds``, lifted early by an administrator's *unlock*) counts failures only from
  sources that have not proven themselves for that account, and refuses only those. A source proves
  itself for an account by completing a login to it, password *and* second factor; it stays proven for
  ``PROVEN_FOR`` after its latest one. So an outsider, who comes from elsewhere and cannot pass the
  second factor, can lock the account against the outside (where a distributed guesser would come from)
  but never against the desk it is used from.

Why not "a locked account still admits a correct password and code": then the lock would not slow
password guessing at all, and the code page appearing would tell a guesser the password was right.

Each source and each (account, source) pair is stored only as an HMAC under the audit keys (purpose
``staff-login-source``), beside the audit trail so that every ``serve`` worker shares the counts; no
address is kept. Rotating the active audit key starts the counts and proofs afresh. The address is
whatever the console resolved for the request (``Auth.source``: the connection's peer, or the client a
trusted proxy names).

Refusals all look alike to the client (one message, one status; the routes see to that) and are each
audited; every refusal is also a breach-detection signal (``staff-login-burst`` on a burst).
Blocking SQL: call from the event loop with ``asyncio.to_thread``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    delete,
    func,
    insert,
    select,
    update,
)

from voice_agent.audit import AuditTrail, Keyring
from voice_agent.audit.store import create_tables, from_db_time, to_db_time

from .users import LoginCheck, StaffStore

__all__ = ["PROVEN_FOR", "LoginThrottle", "Logins"]

#: A source that completed a login to an account stays exempt from that account's lock this long.
PROVEN_FOR = timedelta(days=90)
#: Failures older than this (or than the cap, if longer) no longer count against a source.
WINDOW = timedelta(hours=1)
PURPOSE = "staff-login-source"

metadata = MetaData()

failures_table = Table(
    "staff_login_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(64), nullable=False, index=True),
    Column("at", DateTime(timezone=False), nullable=False),
)

proven_table = Table(
    "staff_login_sources",
    metadata,
    Column("digest", String(64), primary_key=True),
    Column("last_login", DateTime(timezone=False), nullable=False),
)


class LoginThrottle:
    """The per-source backoff and the record of proven sources (synchronous: call it in a thread)."""

    def __init__(
        self,
        trail: AuditTrail,
        keyring: Keyring,
        *,
        threshold: int = 5,
        backoff: timedelta = timedelta(seconds=30),
        cap: timedelta = timedelta(minutes=15),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._trail = trail
        self._keyring = keyring
        self.threshold = threshold
        self.backoff = backoff
        self.cap = cap
        self._window = max(WINDOW, cap)
        self._clock = clock or (lambda: datetime.now(UTC))
        with trail.transaction() as (conn, _append):
            create_tables(conn, metadata)

    def _digest(self, *parts: str) -> str:
        return self._keyring.mac("|".join(parts).encode(), purpose=PURPOSE)

    def _now(self) -> datetime:
        return from_db_time(to_db_time(self._clock()))

    def wait(self, source: str | None) -> timedelta:
        """How long ``source`` must still wait before its next attempt (zero: it may try now)."""
        now = self._now()
        f = failures_table
        with self._trail.engine.connect() as conn:
            count, latest = conn.execute(
                select(func.count(), func.max(f.c.at)).where(
                    f.c.source == self._digest("source", source or "unknown"),
                    f.c.at >= to_db_time(now - self._window),
                )
            ).one()
        if count < self.threshold or latest is None:
            return timedelta(0)
        delay: timedelta = min(self.cap, self.backoff * 2 ** min(int(count) - self.threshold, 32))
        return max(timedelta(0), from_db_time(latest) + delay - now)

    def failed(self, source: str | None) -> None:
        """Count one refused attempt from ``source`` (and forget failures past the window)."""
        now = self._now()
        f = failures_table
        with self._trail.engine.begin() as conn:
            conn.execute(
                insert(f).values(source=self._digest("source", source or "unknown"), at=to_db_time(now))
            )
            conn.execute(delete(f).where(f.c.at < to_db_time(now - self._window)))

    def proven(self, username: str, source: str | None) -> bool:
        """Whether ``source`` completed a login to ``username`` within ``PROVEN_FOR``."""
        if source is None:
            return False
        p = proven_table
        with self._trail.engine.connect() as conn:
            row = conn.execute(
                select(p.c.last_login).where(p.c.digest == self._digest("account", username, source))
            ).first()
        return row is not None and from_db_time(row.last_login) > self._now() - PROVEN_FOR

    def prove(self, username: str, source: str | None) -> None:
        """``source`` just completed a login to ``username``."""
        if source is None:
            return
        now = to_db_time(self._now())
        p = proven_table
        digest = self._digest("account", username, source)
        with self._trail.engine.begin() as conn:
            if conn.execute(update(p).where(p.c.digest == digest).values(last_login=now)).rowcount == 0:
                conn.execute(insert(p).values(digest=digest, last_login=now))
            conn.execute(delete(p).where(p.c.last_login < to_db_time(self._now() - PROVEN_FOR)))


class Logins:
    """The login steps with both limits around ``StaffStore``'s checks: what the routes call."""

    def __init__(self, staff: StaffStore, throttle: LoginThrottle) -> None:
        self.staff = staff
        self.throttle = throttle

    def password(self, username: str, password: str, source: str | None) -> LoginCheck:
        if self.throttle.wait(source) > timedelta(0):
            return self.staff.refuse(username, "SourceThrottled")
        check = self.staff.check_password(
            username, password, lock_applies=not self.throttle.proven(username, source)
        )
        if not check.ok:
            self.throttle.failed(source)
        return check

    def code(self, username: str, code: str, source: str | None) -> LoginCheck:
        if self.throttle.wait(source) > timedelta(0):
            return self.staff.refuse(username, "SourceThrottled")
        check = self.staff.check_code(username, code, lock_applies=not self.throttle.proven(username, source))
        self._after(check, username, source)
        return check

    def enrol(
        self, username: str, code: str, source: str | None, *, session: str | None = None
    ) -> tuple[LoginCheck, list[str]]:
        """The first code from a new authenticator app; ``session``: the half-open session's digest, the
        one session of the account that survives (the others end: the second factor changed)."""
        if self.throttle.wait(source) > timedelta(0):
            return self.staff.refuse(username, "SourceThrottled"), []
        check, codes = self.staff.finish_enrolment(
            username, code, lock_applies=not self.throttle.proven(username, source), session=session
        )
        self._after(check, username, source)
        return check, codes

    def _after(self, check: LoginCheck, username: str, source: str | None) -> None:
        if check.ok:
            self.throttle.prove(username, source)
        else:
            self.throttle.failed(source)
