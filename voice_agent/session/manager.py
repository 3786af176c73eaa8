"""Ephemeral call sessions: everything about a call lives here, in memory, until the call ends.

A session ends on hang-up, on goodbye, on escalation, at shutdown, or after ``idle_timeout`` seconds with
no activity (HIPAA automatic logoff; 15 minutes by default). Ending wipes the state, drops the session
from the registry, and writes the session-end audit event; nothing of it is ever written anywhere else.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from uuid import UUID

from fhir_adapters import PatientRef
from voice_agent.audit import CallMetrics, EndReason, current_session_id
from voice_agent.privacy import NameRegistry, known_names

log = logging.getLogger(__name__)


class SessionAuditor(Protocol):
    async def session_started(self, session_id: UUID) -> None: ...

    async def session_ended(
        self,
        session_id: UUID,
        reason: EndReason,
        duration_seconds: float,
        metrics: CallMetrics | None = None,
    ) -> None: ...


@dataclass(eq=False)
class CallSession:
    """One call's state. ``repr`` shows only the id: a stray log of a session leaks nothing."""

    id: UUID
    started: float
    last_activity: float
    caller_number: str | None = None
    #: The network peer the call came from, where it is the caller's own (a browser), not a carrier's
    #: or the PBX's: one of the keys failed identity checks are counted under.
    source: str | None = None
    patient: PatientRef | None = None
    #: What the caller said this call (for the dialogue's context), and what the agent found for them.
    heard: list[str] = field(default_factory=list)
    found: dict[str, Any] = field(default_factory=dict)
    #: Names spoken or looked up this call; the log redactor scrubs them from this call's log lines.
    names: NameRegistry = field(default_factory=NameRegistry)
    ended: EndReason | None = None
    #: A voice call's latency summary, numbers only; audited with the session's end.
    metrics: CallMetrics | None = None
    on_end: list[Callable[[EndReason], Awaitable[None]]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"CallSession({self.id}, ended={self.ended})"

    def wipe(self) -> None:
        """Drop every reference to call data. (CPython cannot zero immutable strings in place; with the
        references gone and core dumps refused, nothing of them can reach disk.)"""
        self.caller_number = None
        self.source = None
        self.patient = None
        self.heard.clear()
        self.found.clear()
        self.names.clear()
        self.on_end.clear()


class SessionManager:
    """Owns every live session of this process, and the idle reaper that logs them off."""

    def __init__(
        self,
        auditor: SessionAuditor,
        *,
        idle_timeout: float,
        clock: Callable[[], float] = time.monotonic,
        sweep_interval: float | None = None,
    ) -> None:
        self._auditor = auditor
        self._idle_timeout = idle_timeout
        self._clock = clock
        self._sweep_interval = sweep_interval or max(0.05, min(idle_timeout / 4, 30.0))
        self._sessions: dict[UUID, CallSession] = {}
        self._reaper: asyncio.Task[None] | None = None

    @property
    def active(self) -> int:
        return len(self._sessions)

    def get(self, session_id: UUID) -> CallSession | None:
        return self._sessions.get(session_id)

    @contextlib.asynccontextmanager
    async def call(
        self, *, caller_number: str | None = None, source: str | None = None
    ) -> AsyncIterator[CallSession]:
        """One call, start to end: binds the audit session id (so every FHIR access is attributed to it)
        and the call's name registry (so its log lines are scrubbed of them). Leaving the block ends the
        call as a hang-up unless it already ended; an exception ends it as an error."""
        session = await self.start(caller_number=caller_number)
        session.source = source
        token = current_session_id.set(session.id)
        try:
            with known_names() as registry:
                session.names = registry
                yield session
        except BaseException:
            await self.end(session, "error")
            raise
        finally:
            current_session_id.reset(token)
            await self.end(session, "hangup")

    async def start(self, *, caller_number: str | None = None) -> CallSession:
        now = self._clock()
        session = CallSession(id=uuid.uuid4(), started=now, last_activity=now, caller_number=caller_number)
        await self._auditor.session_started(session.id)  # fail closed: no audit, no call
        self._sessions[session.id] = session
        self._ensure_reaper()
        log.info("call session %s started", session.id)
        return session

    def touch(self, session: CallSession) -> None:
        """Any activity (caller speech, agent speech, a key press) restarts the idle clock."""
        session.last_activity = self._clock()

    async def end(self, session: CallSession, reason: EndReason) -> None:
        """Idempotent. Wipes first, then audits, so a failing audit write cannot keep PHI alive."""
        if session.ended is not None:
            return
        session.ended = reason
        self._sessions.pop(session.id, None)
        callbacks = list(session.on_end)
        duration = self._clock() - session.started
        metrics = session.metrics
        session.wipe()
        for callback in callbacks:
            with contextlib.suppress(Exception):  # a transport that fails to hang up must not stop the wipe
                await callback(reason)
        await self._auditor.session_ended(session.id, reason, duration, metrics)
        log.info("call session %s ended (%s) after %.1f s; its state was wiped", session.id, reason, duration)

    async def sweep(self) -> int:
        """End every session idle past the timeout; returns how many."""
        now = self._clock()
        idle = [s for s in self._sessions.values() if now - s.last_activity >= self._idle_timeout]
        for session in idle:
            await self.end(session, "timeout")
        return len(idle)

    async def end_all(self, reason: EndReason) -> int:
        """End every live session (a draining worker's bound reached); returns how many."""
        live = list(self._sessions.values())
        for session in live:
            await self.end(session, reason)
        return len(live)

    async def shutdown(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        for session in list(self._sessions.values()):
            await self.end(session, "shutdown")

    def _ensure_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.get_running_loop().create_task(self._reap(), name="session-idle-reaper")

    async def _reap(self) -> None:
        while self._sessions:
            await asyncio.sleep(self._sweep_interval)
            await self.sweep()
