"""Options: which of the offers just read out the caller picked ("the second one", "the 10:30", "the one
with Dr. Park"); a pick that fits several offers is no pick."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

from ..base import Offered, UnderstandingContext
from ..spoken import WEEKDAYS, fold, parse_when
from .directory import _directory
from .normalise import _Text

_NOT_AN_OPTION: Final = re.compile(
    r"\b1st (?:available|thing|time|opening|possible|one available|slot available)\b"
)
_OPTION_INDEX: Final = re.compile(
    r"\b(?:option|number|choice|slot|no) (?P<n>[1-9])\b|(?<![\d:])\b(?P<o>[1-9])(?:st|nd|rd|th)\b(?! of\b)"
    r"|^(?:the |number |option )?(?P<b>[1-9])(?: one| please| thanks| thank you| is fine| works)*$"
    r"|^(?:the )?(?P<one>one)(?: please| thanks| thank you)*$"
)
_OPTION_LAST: Final = re.compile(
    r"\b(?:the )?(?:last|final|bottom) ?(?:one|option|slot|time|choice)?\b(?! (?:week|month|year|name))"
)
_OPTION_MIDDLE: Final = re.compile(r"\b(?:the )?middle(?: one)?\b")
_OPTION_EARLIEST: Final = re.compile(
    r"\b(?:the )?(?:earlier|earliest|sooner|soonest) (?:one|option|slot|time)\b"
)
_OPTION_LATEST: Final = re.compile(r"\b(?:the )?(?:later|latest) (?:one|option|slot|time)\b")
_OPTION_TIME: Final = re.compile(
    r"(?<![\d:/.])\b(?P<h>\d{1,2})(?:[:.](?P<m>[0-5]\d)| (?P<ms>[0-5]\d)\b)?(?! ?(?:st|nd|rd|th)\b)"
    r"(?: ?(?P<mer>am|pm|oclock))?\b"
)
_OPTION_TIME_PREP: Final = re.compile(r"(?:\bthe|\bat|\bfor) $")
_NOT_OPTION: Final = re.compile(r"\bnot (?:the )?(?:\d\w*|last|middle|earlier|later)\b")
_WEEKDAY_WORDS: Final = re.compile(r"\b(" + "|".join(WEEKDAYS) + r")s?\b")
_PART_OF_DAY: Final = re.compile(r"\b(morning|afternoon|evening)\b")


@dataclass(frozen=True)
class _Option:
    option: int | None
    attempted: bool  # the caller tried to pick but the pick fits several offers (or none by position)
    negated: bool = False


def _local(start: datetime, now: datetime) -> datetime:
    if start.tzinfo is not None and now.tzinfo is not None:
        return start.astimezone(now.tzinfo)
    return start


def _match_option(t: _Text, ctx: UnderstandingContext, practitioner: str | None) -> _Option:
    offered: Offered = ctx.offered
    count = max(len(offered.starts), len(offered.practitioners))
    limit = count if count else 3
    num = _NOT_AN_OPTION.sub(" ", t.num)
    negated = _NOT_OPTION.search(num) is not None

    m = _OPTION_INDEX.search(num)
    if m:
        n = 1 if m.group("one") else int(m.group("n") or m.group("o") or m.group("b"))
        return _Option(n if n <= limit else None, True, negated)
    if count and _OPTION_LAST.search(num):
        return _Option(count, True, negated)
    if count == 3 and _OPTION_MIDDLE.search(num):
        return _Option(2, True, negated)
    starts = [_local(s, ctx.now) for s in offered.starts]
    if starts and _OPTION_EARLIEST.search(num):
        return _Option(starts.index(min(starts)) + 1, True, negated)
    if starts and _OPTION_LATEST.search(num):
        return _Option(starts.index(max(starts)) + 1, True, negated)
    if not count:
        return _Option(None, False)

    candidates = set(range(count))
    attempted = False
    if starts:
        times = []
        for tm in _OPTION_TIME.finditer(num):
            prefix = num[max(0, tm.start() - 5) : tm.start()]
            if tm.group("m") or tm.group("ms") or tm.group("mer") or _OPTION_TIME_PREP.search(prefix):
                times.append(tm)
        if times:
            attempted = True
            hits: set[int] = set()
            for tm in times:
                hour, minute = int(tm.group("h")), int(tm.group("m") or tm.group("ms") or 0)
                mer = tm.group("mer")
                for i, s in enumerate(starts):
                    same_hour = (
                        s.hour == (hour % 12 + (12 if mer == "pm" else 0))
                        if mer in ("am", "pm")
                        else s.hour % 12 == hour % 12
                    )
                    if same_hour and s.minute == minute:
                        hits.add(i)
            candidates &= hits
        weekdays = {WEEKDAYS.index(w) for w in _WEEKDAY_WORDS.findall(num)}
        if weekdays:
            attempted = True
            candidates &= {i for i, s in enumerate(starts) if s.weekday() in weekdays}
        else:
            when = parse_when(num, ctx.now.date(), ordinals_are_days=False)
            if when.date_from is not None or when.date_to is not None:
                attempted = True
                lo = when.date_from or date.min
                hi = when.date_to or date.max
                candidates &= {i for i, s in enumerate(starts) if lo <= s.date() <= hi}
        part = _PART_OF_DAY.search(num)
        if part:
            attempted = True
            bounds = {"morning": (0, 12), "afternoon": (12, 17), "evening": (17, 24)}[part.group(1)]
            candidates &= {i for i, s in enumerate(starts) if bounds[0] <= s.hour < bounds[1]}
    if practitioner is not None and offered.practitioners:
        attempted = True
        displays = _directory(ctx.practitioners).displays
        candidates &= {
            i
            for i, p in enumerate(offered.practitioners)
            if p == practitioner or displays.get(fold(p).strip()) == practitioner
        }
    if attempted and len(candidates) == 1:
        return _Option(candidates.pop() + 1, True, negated)
    # Several offers fit: an unfinished pick. None fits: a new wish ("what about Thursday"), not a pick.
    return _Option(None, attempted and len(candidates) > 1, negated)
