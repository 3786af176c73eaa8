"""The front desk's opening hours, for deciding whether a call can be put through to a person.

Written as OpenStreetMap's ``opening_hours`` subset clinics already know from their listings
("Mo-Fr 08:00-17:00; Sa 09:00-12:00"). Hand-written: the PyPI parsers of the full grammar are
unmaintained or pull in a grammar engine for what is five lines of rules here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time

_DAYS = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
_RULE = re.compile(
    r"^(?P<days>[A-Za-z]{2}(?:-[A-Za-z]{2})?(?:,[A-Za-z]{2}(?:-[A-Za-z]{2})?)*)\s+"
    r"(?P<start>\d{2}:\d{2})-(?P<end>\d{2}:\d{2})$"
)


@dataclass(frozen=True)
class OpeningHours:
    """Per weekday (Monday = 0), the (start, end) spans the front desk answers; an end of 24:00 is
    midnight. Spans do not cross midnight: write two rules instead."""

    spans: tuple[tuple[int, time, time | None], ...]

    @classmethod
    def parse(cls, text: str) -> OpeningHours:
        spans: list[tuple[int, time, time | None]] = []
        for rule in (r.strip() for r in text.split(";")):
            if not rule:
                continue
            match = _RULE.match(rule)
            if match is None:
                raise ValueError(f"opening hours rule {rule!r} is not like 'Mo-Fr 08:00-17:00'")
            start = _clock(match["start"])
            end = None if match["end"] == "24:00" else _clock(match["end"])
            if end is not None and end <= start:
                raise ValueError(f"opening hours rule {rule!r} ends before it starts")
            for day in _days(match["days"]):
                spans.append((day, start, end))
        return cls(tuple(spans))

    def is_open(self, when: datetime) -> bool:
        """``when`` in the clinic's time zone."""
        day, now = when.weekday(), when.time()
        return any(d == day and start <= now and (end is None or now < end) for d, start, end in self.spans)


def _clock(text: str) -> time:
    hours, minutes = int(text[:2]), int(text[3:])
    if hours > 23 or minutes > 59:
        raise ValueError(f"{text} is not a time of day")
    return time(hours, minutes)


def _days(text: str) -> list[int]:
    days: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        try:
            a = _DAYS.index(first.capitalize())
            b = _DAYS.index(last.capitalize()) if last else a
        except ValueError:
            raise ValueError(f"{part!r} is not a day range like Mo-Fr") from None
        days.extend(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
    return days
