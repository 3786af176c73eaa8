"""The escalation store for the event loop, and the "new urgent escalation" signal for the console.

``EscalationStore`` blocks (SQL, and the audit head lock other writers may hold), so every call here runs
in a worker thread with ``asyncio.to_thread``. The signal is in-process only: it tells this process's
console streams to re-read the queue. It carries no data at all, just a version number, so nothing about
a caller travels through it; another process's escalations show up on the console's next queue read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from datetime import datetime
from uuid import UUID

from .records import Escalation, EscalationCategory, EscalationSummary, ResolutionOutcome, Urgency
from .store import DEFAULT_RETENTION_DAYS, EscalationPurgeReport, EscalationStore


class UrgentSignal:
    """A version counter bumped on every new urgent escalation; waiters wake when it passes theirs.

    Missed bumps are not lost: a subscriber compares versions, so two escalations between two reads
    still wake it (once). Use it from one event loop.
    """

    def __init__(self) -> None:
        self._version = 0
        self._changed = asyncio.Event()

    @property
    def version(self) -> int:
        return self._version

    def notify(self) -> None:
        self._version += 1
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def wait(self, seen: int) -> int:
        """Return the current version as soon as it is greater than ``seen``."""
        while self._version <= seen:
            await self._changed.wait()
        return self._version

    async def subscribe(self) -> AsyncGenerator[int, None]:
        """Yield a new version after each urgent escalation from now on (for an SSE stream); ``aclose``
        it when the stream ends."""
        seen = self._version
        while True:
            seen = await self.wait(seen)
            yield seen


class AsyncEscalationStore:
    """``EscalationStore`` off the event loop, with ``urgent`` signalled after each urgent create."""

    def __init__(self, store: EscalationStore) -> None:
        self.store = store
        self.urgent = UrgentSignal()

    async def create(
        self,
        *,
        category: EscalationCategory,
        session_id: UUID,
        urgency: Urgency | None = None,
        patient_id: str | None = None,
        callback_number: str | None = None,
        origin: str | None = None,
    ) -> Escalation:
        escalation = await asyncio.to_thread(
            lambda: self.store.create(
                category=category,
                session_id=session_id,
                urgency=urgency,
                patient_id=patient_id,
                callback_number=callback_number,
                origin=origin,
            )
        )
        if escalation.urgency is Urgency.URGENT:
            self.urgent.notify()  # only after the commit: a woken console finds the row
        return escalation

    async def merge_urgent(
        self, origin: str, category: EscalationCategory, session_id: UUID
    ) -> EscalationSummary | None:
        merged = await asyncio.to_thread(self.store.merge_urgent, origin, category, session_id)
        if merged is not None:
            self.urgent.notify()  # the console's open pages refresh and show the count
        return merged

    async def repeats(self) -> dict[UUID, int]:
        return await asyncio.to_thread(self.store.repeats)

    async def queue(self, limit: int = 100) -> list[EscalationSummary]:
        return await asyncio.to_thread(self.store.queue, limit)

    async def get(self, escalation_id: UUID, staff_user: str) -> Escalation:
        return await asyncio.to_thread(self.store.get, escalation_id, staff_user)

    async def claim(self, escalation_id: UUID, staff_user: str) -> EscalationSummary:
        return await asyncio.to_thread(self.store.claim, escalation_id, staff_user)

    async def resolve(
        self, escalation_id: UUID, staff_user: str, outcome: ResolutionOutcome
    ) -> EscalationSummary:
        return await asyncio.to_thread(self.store.resolve, escalation_id, staff_user, outcome)

    async def purge_resolved(
        self, now: datetime, retention_days: int = DEFAULT_RETENTION_DAYS
    ) -> EscalationPurgeReport:
        return await asyncio.to_thread(self.store.purge_resolved, now, retention_days)
