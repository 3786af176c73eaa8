"""Which worker runs which call, so that a worker's death leaves its calls interrupted, not missing.

Several identical workers share one audit trail (appends are serialised by the head lock, so the one
hash chain stays linear whoever writes). A worker that is killed cannot write the ``session.end`` of its
live calls. So every worker keeps a heartbeat row, and every open call a row naming its worker, both
committed in the same transaction as the audit event they mirror. When a worker's heartbeat lapses, any
surviving worker (or the next one to start) closes that worker's open sessions with a ``session.end``
whose reason is ``interrupted``, and deletes its rows.

The two tables hold worker names, random session UUIDs and times: nothing about a caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    MetaData,
    String,
    Table,
    delete,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import Connection

from .events import MAX_DURATION_SECONDS, Actor, AuditAction, AuditEvent, AuditPurpose
from .store import create_tables, from_db_time, to_db_time
from .trail import AuditTrail, SessionTally

log = logging.getLogger(__name__)

#: Heartbeats a worker may miss before it is presumed dead.
MISSED_HEARTBEATS = 3
#: Arbitrary constant for ``pg_advisory_xact_lock`` while creating the tables.
_PG_DDL_LOCK = 0x766F_6963_6577_6B72

metadata = MetaData()

workers_table = Table(
    "agent_workers",
    metadata,
    Column("worker_id", String(64), primary_key=True),
    Column("started_at", DateTime(timezone=False), nullable=False),
    Column("heartbeat_at", DateTime(timezone=False), nullable=False),
    Column("draining", Boolean(), nullable=False, default=False),
)

open_sessions_table = Table(
    "agent_open_sessions",
    metadata,
    Column("session_id", String(36), primary_key=True),
    Column("worker_id", String(64), nullable=False, index=True),
    Column("started_at", DateTime(timezone=False), nullable=False),
)


@dataclass(frozen=True)
class OpenSession:
    session_id: UUID
    worker_id: str
    started_at: datetime
    #: Whether its worker's heartbeat is current (the call may well be in progress).
    worker_alive: bool


def _utcnow() -> datetime:
    return datetime.now(UTC)


class WorkerLedger:
    """This worker's heartbeat and its calls' rows, beside the audit trail it shares with other workers."""

    def __init__(
        self,
        trail: AuditTrail,
        worker_id: str,
        *,
        heartbeat_seconds: float,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.trail = trail
        self.worker_id = worker_id
        self.stale_after = timedelta(seconds=heartbeat_seconds * MISSED_HEARTBEATS)
        self.heartbeat_seconds = heartbeat_seconds
        self._clock = clock
        #: Set when the worker stops taking calls (SIGTERM); the heartbeat publishes it.
        self.draining = False

    def create(self) -> None:
        """Create the tables if absent; safe when several workers start together."""
        with self.trail.engine.begin() as conn:
            create_tables(conn, metadata)

    def _now(self) -> datetime:
        return to_db_time(self._clock())

    # ------------------------------------------------------------------ this worker

    def register(self) -> None:
        now = self._now()
        with self.trail.engine.begin() as conn:
            conn.execute(delete(workers_table).where(workers_table.c.worker_id == self.worker_id))
            conn.execute(
                insert(workers_table).values(
                    worker_id=self.worker_id, started_at=now, heartbeat_at=now, draining=False
                )
            )

    def heartbeat(self) -> None:
        draining = self.draining
        with self.trail.engine.begin() as conn:
            updated = conn.execute(
                update(workers_table)
                .where(workers_table.c.worker_id == self.worker_id)
                .values(heartbeat_at=self._now(), draining=draining)
            ).rowcount
            if not updated:  # presumed dead by another worker (a long stall): say so, and come back
                log.warning("worker %s had been presumed dead; registering again", self.worker_id)
                now = self._now()
                conn.execute(
                    insert(workers_table).values(
                        worker_id=self.worker_id, started_at=now, heartbeat_at=now, draining=draining
                    )
                )

    def retire(self) -> None:
        """A clean exit: every call has ended (and written its end), so the worker row goes."""
        with self.trail.engine.begin() as conn:
            conn.execute(delete(workers_table).where(workers_table.c.worker_id == self.worker_id))

    # ------------------------------------------------------------------ inside an audit transaction

    def opened(self, conn: Connection, session_id: UUID) -> None:
        conn.execute(
            insert(open_sessions_table).values(
                session_id=str(session_id), worker_id=self.worker_id, started_at=self._now()
            )
        )

    def closed(self, conn: Connection, session_id: UUID) -> None:
        conn.execute(delete(open_sessions_table).where(open_sessions_table.c.session_id == str(session_id)))

    # ------------------------------------------------------------------ other workers

    def reap(self, actor: Actor) -> list[UUID]:
        """Close the open sessions of every worker whose heartbeat has lapsed (and of none that is alive):
        one ``session.end`` (reason and outcome ``interrupted``) each, in one transaction under the head
        lock, so two survivors reaping at once cannot both close the same session. Blocking."""
        cutoff = self._now() - self.stale_after
        if all(session.worker_alive for session in self.open_sessions()):
            # The common case, checked without the head lock; a dead worker with no call left needs no
            # audit event, only its row gone.
            with self.trail.engine.begin() as conn:
                conn.execute(delete(workers_table).where(workers_table.c.heartbeat_at < cutoff))
            return []
        closed: list[UUID] = []
        with self.trail.transaction() as (conn, append):
            alive = {
                str(row.worker_id)
                for row in conn.execute(
                    select(workers_table.c.worker_id).where(workers_table.c.heartbeat_at >= cutoff)
                )
            }
            orphans = [
                row
                for row in conn.execute(
                    select(open_sessions_table).order_by(open_sessions_table.c.started_at)
                )
                if str(row.worker_id) not in alive
            ]
            for row in orphans:
                session_id = UUID(str(row.session_id))
                started = from_db_time(row.started_at)
                append(
                    AuditEvent.now(
                        actor=actor,
                        purpose=AuditPurpose.CALL_SESSION,
                        action=AuditAction.SESSION_END,
                        outcome="interrupted",
                        session_id=session_id,
                        worker=str(row.worker_id),
                        end_reason="interrupted",
                        # Until the last heartbeat at most; the call died somewhere in between.
                        duration_seconds=min(
                            MAX_DURATION_SECONDS, max(0.0, (from_db_time(cutoff) - started).total_seconds())
                        ),
                        phi_retained="none",
                    )
                )
                closed.append(session_id)
            if orphans:
                conn.execute(
                    delete(open_sessions_table).where(
                        open_sessions_table.c.session_id.in_([str(row.session_id) for row in orphans])
                    )
                )
            conn.execute(delete(workers_table).where(workers_table.c.heartbeat_at < cutoff))
        if closed:
            log.warning("closed %d sessions of a worker that stopped without ending them", len(closed))
        return closed

    def open_sessions(self) -> list[OpenSession]:
        """Sessions with no end yet, and whether their worker is alive (for ``audit verify``)."""
        cutoff = self._now() - self.stale_after
        if not inspect(self.trail.engine).has_table(open_sessions_table.name):
            return []  # a trail written before workers kept rows (or by tools only)
        with self.trail.engine.connect() as conn:
            alive = {
                str(row.worker_id)
                for row in conn.execute(
                    select(workers_table.c.worker_id).where(workers_table.c.heartbeat_at >= cutoff)
                )
            }
            return [
                OpenSession(
                    UUID(str(row.session_id)),
                    str(row.worker_id),
                    from_db_time(row.started_at),
                    str(row.worker_id) in alive,
                )
                for row in conn.execute(select(open_sessions_table))
            ]


async def keep_alive(ledger: WorkerLedger, actor: Actor) -> None:
    """Beat, and close the sessions of workers that stopped beating, until cancelled. A failed beat is
    logged and retried: the database may be failing over, and the calls in progress go on meanwhile."""
    while True:
        try:
            await asyncio.to_thread(ledger.heartbeat)
            await asyncio.to_thread(ledger.reap, actor)
        except Exception as error:
            log.error("worker heartbeat failed (%s); retrying", type(error).__name__)
        await asyncio.sleep(ledger.heartbeat_seconds)


#: Session ids listed in full per category; beyond this, a count.
_LISTED = 50


def session_lines(tally: SessionTally, open_sessions: list[OpenSession]) -> list[str]:
    """``audit verify``'s account of calls: how they ended, and every one a dead worker left open (closed
    as interrupted, or not yet closed) by its session id and worker, so none is silently missing."""
    alive = {s.session_id: s for s in open_sessions}
    endings = ", ".join(f"{reason} {count}" for reason, count in sorted(tally.ended.items())) or "none"
    lines = [f"Calls: {tally.started} sessions started; ended: {endings}."]

    def listed(title: str, entries: list[str]) -> None:
        if not entries:
            return
        lines.append(f"{title}: {len(entries)}")
        lines.extend(f"  {entry}" for entry in entries[:_LISTED])
        if len(entries) > _LISTED:
            lines.append(f"  ... and {len(entries) - _LISTED} more")

    listed(
        "Interrupted (the worker died mid-call; closed by another worker)",
        [f"session {sid} on worker {worker or '?'}" for sid, worker in tally.interrupted.items()],
    )
    in_progress, stranded = [], []
    for sid, worker in tally.unended.items():
        row = alive.get(sid)
        if row is not None and row.worker_alive:
            in_progress.append(f"session {sid} on worker {row.worker_id}")
        else:
            stranded.append(f"session {sid} on worker {worker or '?'}")
    listed("In progress (their worker is alive)", in_progress)
    listed("Interrupted, not yet closed (their worker stopped without ending them)", stranded)
    return lines
