"""Console sessions: a random token in a cookie, its HMAC in the database, automatic logoff.

The browser holds 256 random bits (an HttpOnly, Secure, SameSite=Strict ``__Host-`` cookie); the
database holds only their HMAC under the audit keys (``Keyring.mac``, purpose ``staff-session``: a key
outside the database, so someone who can write the database but not read the key file cannot insert a
row that any cookie opens), the account, the stage (``password``: the first factor passed, the
second is pending; ``full``: logged in), and two times. Nothing else about the session is kept, on the
server or in the browser. Sessions live in the database rather than in one process's memory so that
several ``serve`` workers share them; ending one deletes its row.

Automatic logoff: a session with no request for ``idle`` (15 minutes by default) or older than
``max_age`` is over. The request that finds it so ends it, and so does the sweep ``serve`` runs every few
seconds, so an abandoned session is closed (and its ``staff.logout`` audited, ``end_reason`` timeout)
even if its browser never comes back. The queue's live updates are not activity: only what a person
does (opening a page, a form, "stay signed in") is.

A change to an account's credentials or role (``end_sessions``, called inside the change's own
transaction) ends its other sessions at once, each audited as a ``staff.logout`` with ``end_reason``
revoked and what changed: a browser signed in before a reset is signed out by it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Column, Connection, DateTime, MetaData, Select, String, Table, delete, select, update

from voice_agent.audit import (
    Actor,
    AuditAction,
    AuditEvent,
    AuditPurpose,
    AuditTrail,
    EndReason,
    Keyring,
    StaffChange,
)
from voice_agent.audit.row_integrity import RowSeal, TamperAlarm, Verdict, add_mac_columns, mac_columns
from voice_agent.audit.store import create_tables, from_db_time, to_db_time

from .users import STAFF_SEAL, StaffUser, staff_users_table, user_from_row

Stage = Literal["password", "full"]
#: Between the password and the code (or enrolment) a session may wait this long at most.
SECOND_FACTOR_WINDOW = timedelta(minutes=5)
#: ``touch`` writes only when the last write is older than this: a burst of requests costs one write.
TOUCH_GRANULARITY = timedelta(seconds=2)
#: The ``Keyring.mac`` purpose of session token digests (a tag made for one use is never valid for another).
PURPOSE = "staff-session"

metadata = MetaData()

staff_sessions_table = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(32), nullable=False, index=True),
    Column("stage", String(8), nullable=False),
    Column("created_at", DateTime(timezone=False), nullable=False),
    Column("last_seen", DateTime(timezone=False), nullable=False),
    #: HMAC over ``SESSION_SEAL.columns``: a session row's account or stage changed in SQL (someone's own
    #: half-open session made "full", or pointed at the administrator) is no session.
    *mac_columns(),
)
SESSION_SEAL = RowSeal("staff-session-row", ("token_hash", "username", "stage", "created_at"))


def end_sessions(
    conn: Connection,
    append: Callable[[AuditEvent], None],
    username: str,
    change: StaffChange,
    now: datetime,
    *,
    keep: str | None = None,
) -> int:
    """End every session of ``username`` but ``keep`` (a token digest), inside the caller's transaction:
    its credentials or role just changed, so a browser signed in before the change is signed in no more.
    Each logged-in one is audited as a ``staff.logout`` (``end_reason`` revoked, ``staff_change`` what
    changed). Returns how many ended."""
    s = staff_sessions_table
    query = select(s.c.token_hash, s.c.stage, s.c.created_at).where(s.c.username == username)
    if keep is not None:
        query = query.where(s.c.token_hash != keep)
    rows = conn.execute(query).all()
    if rows:
        conn.execute(delete(s).where(s.c.token_hash.in_([row.token_hash for row in rows])))
    for row in rows:
        if row.stage == "full":
            append(
                AuditEvent(
                    time=now,
                    actor=Actor(kind="staff", id=username),
                    purpose=AuditPurpose.STAFF_CONSOLE,
                    action=AuditAction.STAFF_LOGOUT,
                    outcome="success",
                    end_reason="revoked",
                    staff_change=change,
                    duration_seconds=max(0.0, (now - from_db_time(row.created_at)).total_seconds()),
                )
            )
    return len(rows)


@dataclass(frozen=True)
class StaffSession:
    token_hash: str
    user: StaffUser
    stage: Stage
    created_at: datetime
    last_seen: datetime

    @property
    def username(self) -> str:
        return self.user.username


class SessionStore:
    def __init__(
        self,
        trail: AuditTrail,
        keyring: Keyring,
        *,
        idle: timedelta,
        max_age: timedelta,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._trail = trail
        self._keyring = keyring
        self.idle = idle
        self.max_age = max_age
        self._clock = clock or (lambda: datetime.now(UTC))
        with trail.transaction() as (conn, _append):
            create_tables(conn, metadata)
            if add_mac_columns(conn, staff_sessions_table):
                conn.execute(delete(staff_sessions_table))  # untagged sessions: everyone signs in again
        self._alarm = TamperAlarm(
            trail,
            keyring,
            Actor(kind="service", id="voice-agent"),
            AuditPurpose.STAFF_CONSOLE,
            clock=self._clock,
        )

    def _now(self) -> datetime:
        return from_db_time(to_db_time(self._clock()))

    def digest(self, token: str) -> str:
        """What the database keeps of a token: its HMAC under the active key."""
        return self._keyring.mac(token.encode(), purpose=PURPOSE)

    def open(self, username: str, stage: Stage) -> str:
        """A new session; returns the token for the cookie (the only place it exists in full)."""
        with self._trail.transaction() as (conn, _append):
            return self._insert(conn, username, stage)

    def _insert(self, conn: Connection, username: str, stage: Stage) -> str:
        token = secrets.token_urlsafe(32)
        now = to_db_time(self._now())
        values = {"token_hash": self.digest(token), "username": username, "stage": stage, "created_at": now}
        conn.execute(
            staff_sessions_table.insert().values(
                **values, **SESSION_SEAL.tag(self._keyring, values), last_seen=now
            )
        )
        return token

    def upgrade(self, session: StaffSession) -> str | None:
        """The second factor passed: the half-open session is replaced by a new full one (a new token,
        so a token seen before login is worth nothing after it). None when the half-open one has ended
        meanwhile (an administrator's change to the account ended it): no login then."""
        with self._trail.transaction() as (conn, _append):
            gone = conn.execute(
                delete(staff_sessions_table).where(staff_sessions_table.c.token_hash == session.token_hash)
            )
            return self._insert(conn, session.username, "full") if gone.rowcount == 1 else None

    def get(self, token: str | None) -> StaffSession | None:
        """The live session behind a cookie; an expired one is ended here (and audited) and None comes
        back, as for no session at all. A disabled account's sessions end the same way. The digest is
        tried under every key in the keyring, so a key rotation does not sign everyone out."""
        if not token or len(token) > 100:
            return None
        digests = self._keyring.macs(token.encode(), purpose=PURPOSE)
        with self._trail.engine.connect() as conn, conn.begin():
            row = conn.execute(_joined().where(staff_sessions_table.c.token_hash.in_(digests))).first()
        if row is None:
            return None
        if not self._trusted(row):
            self._drop(str(row.token_hash))
            return None
        session = _session(row)
        if self._expired(session, self._now()) or session.user.disabled:
            self.end(session, "timeout")
            return None
        return session

    def _drop(self, token_hash: str) -> None:
        """Delete a session whose row or account fails its tag (alarmed, not a logoff to audit)."""
        with self._trail.transaction() as (conn, _append):
            conn.execute(delete(staff_sessions_table).where(staff_sessions_table.c.token_hash == token_hash))

    def _trusted(self, row: Any) -> bool:
        """Both the session row and its account pass their tags (checked at every request, so a role
        raised in SQL ends the session at the next click); a failure is alarmed."""
        session_values = {
            "token_hash": row.token_hash,
            "username": row.username,
            "stage": row.stage,
            "created_at": row.session_created,
            "mac_key_id": row.session_mac_key_id,
            "mac": row.session_mac,
        }
        for record, seal, values in (
            ("staff-session", SESSION_SEAL, session_values),
            ("staff-account", STAFF_SEAL, row._mapping),
        ):
            verdict = seal.check(self._keyring, values)
            if verdict is not Verdict.OK:
                self._alarm(record, str(row.username), verdict)
                return False
        return True

    def touch(self, session: StaffSession) -> None:
        """A person did something: the idle clock starts again."""
        now = self._now()
        if now - session.last_seen < TOUCH_GRANULARITY:
            return
        with self._trail.transaction() as (conn, _append):
            conn.execute(
                update(staff_sessions_table)
                .where(staff_sessions_table.c.token_hash == session.token_hash)
                .values(last_seen=to_db_time(now))
            )

    def end(self, session: StaffSession, reason: Literal["logout", "timeout"]) -> bool:
        """Delete the session; a logged-in one's end is audited (``staff.logout``; ``end_reason`` timeout
        for an automatic logoff). Returns whether this call ended it (another may have first)."""
        end_reason: EndReason | None = "timeout" if reason == "timeout" else None
        with self._trail.transaction() as (conn, append):
            gone = conn.execute(
                delete(staff_sessions_table).where(staff_sessions_table.c.token_hash == session.token_hash)
            )
            if gone.rowcount == 1 and session.stage == "full":
                append(
                    AuditEvent(
                        time=self._clock(),
                        actor=Actor(kind="staff", id=session.username),
                        purpose=AuditPurpose.STAFF_CONSOLE,
                        action=AuditAction.STAFF_LOGOUT,
                        outcome="success",
                        end_reason=end_reason,
                        duration_seconds=max(0.0, (self._now() - session.created_at).total_seconds()),
                    )
                )
        return gone.rowcount == 1

    def sweep(self) -> int:
        """End every expired session (audited as automatic logoffs); returns how many."""
        now = self._now()
        s = staff_sessions_table
        oldest_seen = to_db_time(now - min(self.idle, SECOND_FACTOR_WINDOW))
        with self._trail.engine.connect() as conn, conn.begin():
            rows = conn.execute(
                _joined().where(
                    (s.c.last_seen < oldest_seen) | (s.c.created_at < to_db_time(now - self.max_age))
                )
            ).all()
        ended = 0
        for row in rows:
            if not self._trusted(row):  # refused at its next request anyway: gone now
                self._drop(str(row.token_hash))
                continue
            session = _session(row)
            if self._expired(session, now) and self.end(session, "timeout"):
                ended += 1
        return ended

    def remaining(self, session: StaffSession) -> timedelta:
        """How long until this session's automatic logoff if nothing happens."""
        now = self._now()
        return max(timedelta(0), min(session.last_seen + self.idle, session.created_at + self.max_age) - now)

    def _expired(self, session: StaffSession, now: datetime) -> bool:
        idle = self.idle if session.stage == "full" else min(self.idle, SECOND_FACTOR_WINDOW)
        return now - session.last_seen >= idle or now - session.created_at >= self.max_age


def _joined() -> Select[Any]:
    """A session with its account (role, disabled) read in the same query."""
    s, u = staff_sessions_table, staff_users_table
    return select(
        s.c.token_hash,
        s.c.stage,
        s.c.created_at.label("session_created"),
        s.c.last_seen,
        s.c.mac_key_id.label("session_mac_key_id"),
        s.c.mac.label("session_mac"),
        *u.c,
    ).join_from(s, u, u.c.username == s.c.username)


def _session(row: Any) -> StaffSession:
    stage: Stage = "full" if row.stage == "full" else "password"
    return StaffSession(
        token_hash=str(row.token_hash),
        user=user_from_row(row),
        stage=stage,
        created_at=from_db_time(row.session_created),
        last_seen=from_db_time(row.last_seen),
    )
