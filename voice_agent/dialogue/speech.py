"""How times, dates and appointments are said aloud: short, unambiguous, no markup.

Everything spoken about an appointment is formatted here from values that came back from FHIR
(``SlotOffer``, ``AppointmentInfo``), never from what the caller or a model said.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

from fhir_adapters import AppointmentInfo, SlotOffer, VisitType


def ordinal(day: int) -> str:
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def birth_date(born: date) -> str:
    """ "July 25th, 1956": a caller's own date of birth read back to them, month named so that no
    day-month order is assumed."""
    return f"{born:%B} {ordinal(born.day)}, {born.year}"


def clock(moment: datetime) -> str:
    """ "9 AM", "10:30 AM", "noon": what a receptionist would say."""
    if moment.hour == 12 and moment.minute == 0:
        return "noon"
    hour = moment.hour % 12 or 12
    suffix = "AM" if moment.hour < 12 else "PM"
    return f"{hour} {suffix}" if moment.minute == 0 else f"{hour}:{moment.minute:02d} {suffix}"


def day(moment: datetime | date, *, today: date) -> str:
    """ "today", "tomorrow", "Tuesday the 9th" in this month, else "Friday, January 1st": a bare "the 1st"
    said on December 30th would leave the caller to work out which month."""
    when = moment.date() if isinstance(moment, datetime) else moment
    if when == today:
        return "today"
    if (when - today).days == 1:
        return "tomorrow"
    if (when.year, when.month) == (today.year, today.month):
        return f"{when:%A} the {ordinal(when.day)}"
    return f"{when:%A}, {when:%B} {ordinal(when.day)}"


def on_day(moment: datetime | date, *, today: date) -> str:
    """ "on Tuesday the 9th", but "today" and "tomorrow" without the "on"."""
    spoken = day(moment, today=today)
    return spoken if spoken in ("today", "tomorrow") else f"on {spoken}"


def when(moment: datetime, zone: ZoneInfo, *, today: date) -> str:
    local = moment.astimezone(zone)
    return f"{day(local, today=today)} at {clock(local)}"


def on_when(moment: datetime, zone: ZoneInfo, *, today: date) -> str:
    """ "on Tuesday the 9th at 10 AM", "tomorrow at 9 AM"."""
    local = moment.astimezone(zone)
    return f"{on_day(local, today=today)} at {clock(local)}"


def visit(visit_type: VisitType | None) -> str:
    """The visit as a person says it: its display text; a bare code ("annual-physical", which a server
    sends when a coding has no display and the directory knew none either) is never read out as one."""
    if visit_type is None:
        return "appointment"
    words = visit_type.display
    if words == visit_type.code or (" " not in words and re.search(r"[-_]", words)):
        words = re.sub(r"[-_]+", " ", words)
    return words.lower().strip() or "appointment"


def offer(slot: SlotOffer, zone: ZoneInfo, *, today: date) -> str:
    """ "Dr. Daniel Park, Thursday the 26th at 1:30 PM": the confirmation's subject."""
    return f"{slot.practitioner}, {when(slot.start, zone, today=today)}"


def offers(slots: Sequence[SlotOffer], zone: ZoneInfo, *, today: date) -> str:
    """Up to three slots in one breath, saying a shared doctor or day once:
    "with Dr. Park on Thursday the 26th: 1 PM, 1:30 PM, or 2 PM"."""
    locals_ = [s.start.astimezone(zone) for s in slots]
    days = {d.date() for d in locals_}
    doctors = {s.practitioner for s in slots}
    if len(doctors) == 1 and len(days) == 1:
        times = choices([clock(d) for d in locals_])
        return f"with {slots[0].practitioner} {on_day(locals_[0], today=today)}: {times}"
    if len(doctors) == 1:
        return f"with {slots[0].practitioner}: {choices([when(s.start, zone, today=today) for s in slots])}"
    if len(days) == 1:
        spoken = [f"{s.practitioner} at {clock(d)}" for s, d in zip(slots, locals_, strict=True)]
        return f"{on_day(locals_[0], today=today)}: {choices(spoken)}"
    return choices([f"{s.practitioner} {on_when(s.start, zone, today=today)}" for s in slots])


def article(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def appointment(info: AppointmentInfo, zone: ZoneInfo, *, today: date) -> str:
    """ "your follow-up visit with Dr. Daniel Park on Tuesday the 9th at 10:30 AM"."""
    parts = [f"your {visit(info.visit_type)}"]
    if info.practitioner:
        parts.append(f"with {info.practitioner}")
    if info.start is not None:
        parts.append(on_when(info.start, zone, today=today))
    return " ".join(parts)


def choices(items: Sequence[str]) -> str:
    """ "A", "A or B", "A, B, or C"."""
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} or {items[1]}"
    return f"{', '.join(items[:-1])}, or {items[-1]}"


def joined(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} and {items[1]}"
    return f"{', '.join(items[:-1])}, and {items[-1]}"
