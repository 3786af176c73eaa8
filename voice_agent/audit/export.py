"""An auditor's export: decrypted events in a time range as JSON lines, the export itself audited.

One implementation for ``voice-agent audit export`` and the compliance officer's console page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from .events import Actor, AuditAction, AuditEvent, AuditPurpose
from .trail import AuditIntegrityError, AuditTrail


@dataclass(frozen=True)
class ExportResult:
    count: int
    #: Why the export stopped early (an integrity failure), else None.
    problem: str | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def parse_moment(value: str, *, end: bool) -> datetime:
    """An ISO date (a whole UTC day; as an end it includes that day) or an ISO datetime (naive means
    UTC). Raises ``ValueError`` with a message that may be shown."""
    try:
        if len(value) == 10:
            day = datetime.combine(date.fromisoformat(value), time(), UTC)
            return day + timedelta(days=1) if end else day
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO date (2026-01-31) or datetime") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def export_events(
    trail: AuditTrail, start: datetime, stop: datetime, actor: Actor, write: Callable[[str], object]
) -> ExportResult:
    """Write each event recorded in ``[start, stop)`` as one JSON line, oldest first, then append the
    ``audit.export`` event (success, or failure with how many were written before a record failed its
    checks). Blocking."""
    count = 0
    problem: str | None = None
    try:
        for item in trail.export(start, stop):
            write(json.dumps(item, sort_keys=True, separators=(",", ":")) + "\n")
            count += 1
    except AuditIntegrityError as exc:
        problem = str(exc)
    finally:
        trail.append(
            AuditEvent.now(
                actor=actor,
                purpose=AuditPurpose.AUDIT_REVIEW,
                action=AuditAction.AUDIT_EXPORT,
                outcome="success" if problem is None else "failure",
                range_start=start,
                range_end=stop,
                event_count=count,
            )
        )
    return ExportResult(count, problem)
