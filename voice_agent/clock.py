"""The agent's one idea of "now", shared by the dialogue, the scheduling operations and the front desk's
hours, so that every date the agent reasons about comes from one place.

On a clinic's server it is wall time in the clinic's zone. On the development sandbox alone a clock may
start at a chosen local time and run on from there (``VOICE_AGENT_CLOCK_START``), so the whole product can
be tried on a month end, a leap day or a daylight-saving change; audit and session timing never use it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

__all__ = ["Clock", "clock_for"]


@dataclass(frozen=True)
class Clock:
    """Wall time in ``zone``, shifted by ``offset`` (zero outside the development sandbox)."""

    zone: ZoneInfo
    offset: timedelta = timedelta(0)

    def __call__(self) -> datetime:
        return (datetime.now(self.zone) + self.offset).astimezone(self.zone)

    @classmethod
    def starting_at(cls, start: datetime, zone: ZoneInfo) -> Clock:
        """A clock that reads ``start`` now and runs on in real time; a naive ``start`` is local time."""
        aware = start if start.tzinfo is not None else start.replace(tzinfo=zone)
        return cls(zone, aware - datetime.now(zone))


def clock_for(zone: ZoneInfo, start: datetime | None) -> Callable[[], datetime]:
    return Clock(zone) if start is None else Clock.starting_at(start, zone)
