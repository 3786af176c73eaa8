"""Console sessions: a random token in a cookie, its SHA-256 in the database, automatic logoff.

The browser holds 256 random bits (an HttpOnly, Secure, SameSite=Strict ``__Host-`` cookie); the
database holds only their digest, the account, the stage (``password``: the first factor passed, the
second is pending; ``full``: logged in), and two times. Nothing else about the session is kept, on the
server or in the browser. Sessions live in the database rather than in one process's memory so that
several ``serve`` workers share them; ending one deletes its row.

Automatic logoff: a session with no request for ``idle`` (15 minutes by default) or older than
``max_age`` is over. The request that finds it so ends it, and so does the sweep ``serve`` runs every few
seconds, so an abandoned session is closed (and its ``staff.logout`` audited, ``end_reason`` timeout)
even if its browser never comes back. The queue's live updates are not activity: only what a person
does (opening a page, a form, "stay signed in") is.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Column, DateTime, MetaData, Select, String, Table, delete, select, update

from voice_agent.audit import Actor, AuditAction, AuditEvent, AuditPurpose, AuditTrail, EndReason
from voice_agent.audit.store import create_tables, from_db_time, to_db_time

from .users import StaffUser, staff_users_table, user_from_row

Stage = Literal["password", "full"]
#: Between the password and the code (or enrolment) a session may wait this long at most.
SECOND_FACTOR_WINDOW = timedelta(minutes=5)
#: ``touch`` writes only when the last write is older than this: a burst of requests costs one write.
TOUCH_GRANULARITY = timedelta(seconds=2)

metadata = MetaData()

staff_sessions_table = Table(
    "staff_sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("username", String(32), nullable=False, index=True),
    Column("stage", String(8), nullable=False),
    Column("created_at", DateTime(timezone=False), nullable=False),
    Column("last_seen", DateTime(timezone=False), nullable=False),
)


def digest(token: str) -> str:
    return hashlib.sha256(f"voice-agent staff session v1|{token}".encode()).hexdigest()


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
        *,
        idle: timedelta,
        max_age: timedelta,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._trail = trail
        self.idle = idle
        self.max_age = max_age
        self._clock = clock or (lambda: datetime.now(UTC))
        with trail.transaction() as (conn, _append):
            create_tables(conn, metadata)

    def _now(self) -> datetime:
        return from_db_time(to_db_time(self._clock()))

    def open(self, username: str, stage: Stage) -> str:
        """A new session; returns the token for the cookie (the only place it exists in full)."""
        token = secrets.token_urlsafe(32)
        now = to_db_time(self._now())
        with self._trail.transaction() as (conn, _append):
            conn.execute(
                staff_sessions_table.insert().values(
                    token_hash=digest(token), username=username, stage=stage, created_at=now, last_seen=now
                )
            )
        return token

    def upgrade(self, session: StaffSession) -> str:
        """The second factor passed: the half-open session is replaced by a new full one (a new token,
        so a token seen before login is worth nothing after it)."""
        with self._trail.transaction() as (conn, _append):
            conn.execute(
                delete(staff_sessions_table).where(staff_sessions_table.c.token_hash == session.token_hash)
            )
        return self.open(session.username, "full")

    def get(self, token: str | None) -> StaffSession | None:
        """The live session behind a cookie; an expired one is ended here (and audited) and None comes
        back, as for no session at all. A disabled account's sessions end the same way."""
        if not token or len(token) > 100:
            return None
        token_hash = digest(token)
        with self._trail.engine.connect() as conn, conn.begin():
            row = conn.execute(_joined().where(staff_sessions_table.c.token_hash == token_hash)).first()
        if row is None:
            return None
        session = _session(row)
        if self._expired(session, self._now()) or session.user.disabled:
            self.end(session, "timeout")
            return None
        return session

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
        s.c.token_hash, s.c.stage, s.c.created_at.label("session_created"), s.c.last_seen, *u.c
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
