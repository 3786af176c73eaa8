"""The days a caller asks for ("next Thursday", "on the 3rd", "after the 10th"), as a date range.

Kept apart from times of day: the two are read independently and only :mod:`.when` combines them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from .months import _MONTH, _MONTHS, _SUFFIX, _valid

WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_RE: Final = re.compile(
    r"\b(?:(?P<mod>this coming|this|next|coming|the following|following) )?"
    r"(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b"
    r"(?P<suf> (?:of |on )?next week| (?:of |on )?this week| after next)?"
)
_REL_DAY: Final = re.compile(
    r"\b(?P<w>day after tomorrow|tomorrow|tomorow|tmrw|today|tonight|this (?:morning|afternoon|evening))\b"
)
_WEEK_RE: Final = re.compile(
    r"\b(?P<w>(?:the )?week after next|early next week|(?:late|the end of|end of) next week|next week"
    r"|(?:later|the end of|end of|the rest of|rest of) (?:this|the) week|this week)\b"
)
_IN_N: Final = re.compile(
    r"\bin (?:about |around |like |maybe )?(?P<n>\d{1,2}|a|an|a couple(?: of)?|couple(?: of)?|a few|few)"
    r" (?P<u>days?|weeks?|months?)\b"
)
_MONTH_REL: Final = re.compile(r"\b(?P<w>next month|this month|later this month)\b")
_MONTH_DAY: Final = re.compile(
    rf"\b{_MONTH}\.? (?:the )?(?P<d>\d{{1,2}}){_SUFFIX}\b(?![:.]\d)(?:,? (?P<y>\d{{4}}))?"
)
_DAY_MONTH: Final = re.compile(
    rf"(?<![\d:.])\b(?:the )?(?P<d>\d{{1,2}}){_SUFFIX} (?P<of>of )?{_MONTH}\b(?:,? (?P<y>\d{{4}}))?"
)
_SLASH: Final = re.compile(r"(?<![\d/])\b(?P<m>\d{1,2})/(?P<d>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?\b(?![/\d])")
# "the 1st one", "the 2nd available", "the 1st thing you have": an ordinal that picks among times (or
# asks for the soonest), never a day of the month.
_PICKS: Final = (
    r"available|availability|open|opening|openings|one|ones|slot|slots|spot|spots|time|times|appointment"
    r"|appointments|option|options|choice|possible|free|thing|things|offer|opportunity|chance|date|dates"
)
_DAY_OF_MONTH: Final = re.compile(
    r"\b(?:(?P<prep>on|for|by|before|after|until|till|from|starting|through|to|and) )?the "
    r"(?P<d>\d{1,2})(?P<suf>st|nd|rd|th)?\b(?![:.]\d| ?(?:am|pm|oclock|of|minutes?|hours?|days?|weeks?))"
    rf"(?! (?:{_PICKS})\b)"
)
# A weekday and a day of the month together ("Friday the 1st", "Monday, the 3rd"): one date, both true.
_WEEKDAY_THE_DAY: Final = re.compile(
    r"\b(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday),? (?:the )?"
    r"(?P<d>\d{1,2})(?:st|nd|rd|th)\b(?![:.]\d| ?(?:am|pm|oclock|of\b))"
)
# A weekday followed by the date it names ("Friday, January 1st", "Monday the 4th of January"): the
# date is what the caller means; the weekday alone would be the coming one.
_ANY_MONTH: Final = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
_WEEKDAY_THEN_DATE: Final = re.compile(
    r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?,? (?:the )?"
    rf"(?:{_ANY_MONTH}\b|\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{_ANY_MONTH}\b|\d{{1,2}}/\d{{1,2}}\b)"
)
_PREP_BEFORE: Final = re.compile(
    r"(?:^|\s)(?P<p>after|from|starting|starting on|beginning|since|not before|no earlier than|later than"
    r"|before|until|till|til|by|through|thru|not after|no later than|earlier than)(?: on| the)?\s*$"
)
_FROM_INCLUSIVE: Final = frozenset({"from", "starting", "starting on", "beginning", "since", "not before"})
_FROM_EXCLUSIVE: Final = frozenset({"after", "later than", "no earlier than"})
_TO_INCLUSIVE: Final = frozenset({"until", "till", "til", "by", "through", "thru", "not after"})
_TO_EXCLUSIVE: Final = frozenset({"before", "earlier than", "no later than"})


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _workweek(monday: date) -> tuple[date, date]:
    return monday, monday + timedelta(days=4)


def _month_span(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def _add_months(d: date, months: int) -> tuple[int, int]:
    index = d.year * 12 + d.month - 1 + months
    return index // 12, index % 12 + 1


def _next_month_day(today: date, month: int, day: int, year: int | None) -> date | None:
    if year is not None:
        explicit = _valid(year, month, day)
        return explicit if explicit is not None and explicit >= today else None
    for y in range(today.year, today.year + 5):
        candidate = _valid(y, month, day)
        if candidate is not None and candidate >= today:
            return candidate
    return None


def _next_weekday_day(today: date, weekday: int, day: int) -> date | None:
    """The next date (within about two years) that is both this weekday and this day of the month."""
    for k in range(27):
        y, m = _add_months(today, k)
        candidate = _valid(y, m, day)
        if candidate is not None and candidate >= today and candidate.weekday() == weekday:
            return candidate
    return None


def _next_day_of_month(today: date, day: int) -> date | None:
    for k in range(13):
        y, m = _add_months(today, k)
        candidate = _valid(y, m, day)
        if candidate is not None and candidate >= today:
            return candidate
    return None


def _count(word: str) -> int:
    if word.isdigit():
        return int(word)
    if "couple" in word:
        return 2
    if "few" in word:
        return 3
    return 1  # "a", "an"


@dataclass
class _Dates:
    """Accumulates what was said: spans (a day or a range) and one-sided bounds."""

    spans: list[tuple[date, date]]
    froms: list[date]
    tos: list[date]

    def add(self, text: str, start: int, first: date, last: date, prep: str | None = None) -> None:
        if prep is None:
            m = _PREP_BEFORE.search(text, max(0, start - 24), start)
            prep = m.group("p") if m else None
        if prep in _FROM_INCLUSIVE:
            self.froms.append(first)
        elif prep in _FROM_EXCLUSIVE:
            self.froms.append(last + timedelta(days=1))
        elif prep in _TO_INCLUSIVE:
            self.tos.append(last)
        elif prep in _TO_EXCLUSIVE:
            self.tos.append(first - timedelta(days=1))
        else:
            self.spans.append((first, last))


def _parse_dates(text: str, today: date, *, ordinals_are_days: bool) -> tuple[date | None, date | None]:
    found = _Dates([], [], [])
    this_monday = _monday(today)
    next_monday = this_monday + timedelta(days=7)
    weekday_week: date | None = None  # "Tuesday next week": the week qualifies the weekday
    weekday_hits = list(_WEEKDAY_RE.finditer(text))
    week_phrases = list(_WEEK_RE.finditer(text))
    if weekday_hits and week_phrases:
        w = week_phrases[0].group("w")
        if w == "next week":
            weekday_week = next_monday
        elif w == "this week":
            weekday_week = this_monday
        if weekday_week is not None:
            week_phrases = week_phrases[1:]
    taken: list[tuple[int, int]] = []  # spans already read as a date, so no later pattern reads them again
    for m in _WEEKDAY_THE_DAY.finditer(text):
        wd, dom = WEEKDAYS.index(m.group("wd")), int(m.group("d"))
        both = _next_weekday_day(today, wd, dom)
        if both is not None:
            taken.append(m.span())
            found.add(text, m.start(), both, both)
    for m in weekday_hits:
        if any(a <= m.start() < b for a, b in taken) or _WEEKDAY_THEN_DATE.match(text, m.start()):
            continue  # "Friday the 1st", "Friday, January 1st": the date says which Friday
        wd = WEEKDAYS.index(m.group("wd"))
        mod, suf = m.group("mod"), (m.group("suf") or "").strip()
        if mod == "next" or suf.endswith("next week") or suf == "after next":
            day = next_monday + timedelta(days=wd + (7 if suf == "after next" else 0))
        elif suf.endswith("this week"):
            day = this_monday + timedelta(days=wd)
        elif weekday_week is not None and mod is None:
            day = weekday_week + timedelta(days=wd)
        else:
            ahead = (wd - today.weekday()) % 7 or 7
            day = today + timedelta(days=ahead)
        found.add(text, m.start(), day, day)
    for m in _REL_DAY.finditer(text):
        w = m.group("w")
        offset = 2 if w.startswith("day after") else 1 if w.startswith("tom") or w == "tmrw" else 0
        day = today + timedelta(days=offset)
        found.add(text, m.start(), day, day)
    for m in week_phrases:
        w = m.group("w")
        if w.endswith("week after next"):
            first, last = _workweek(next_monday + timedelta(days=7))
        elif w == "early next week":
            first, last = next_monday, next_monday + timedelta(days=1)
        elif w.endswith("next week"):
            first, last = (next_monday + timedelta(days=3), next_monday + timedelta(days=4))
            if w == "next week":
                first, last = _workweek(next_monday)
        elif w == "this week":
            first, last = today, max(today, this_monday + timedelta(days=4))
        else:  # later / end of / rest of this week
            first = today + timedelta(days=1) if not w.startswith(("the rest", "rest")) else today
            last = max(first, this_monday + timedelta(days=4))
        found.add(text, m.start(), first, last)
    for m in _IN_N.finditer(text):
        n, unit = _count(m.group("n")), m.group("u")
        if unit.startswith("day"):
            day = today + timedelta(days=n)
            found.add(text, m.start(), day, day)
        elif unit.startswith("week"):
            first, last = _workweek(_monday(today + timedelta(days=7 * n)))
            found.add(text, m.start(), first, last)
        else:
            first, last = _month_span(*_add_months(today, n))
            found.add(text, m.start(), first, last)
    for m in _MONTH_REL.finditer(text):
        w = m.group("w")
        if w == "next month":
            first, last = _month_span(*_add_months(today, 1))
        else:
            first, last = today, _month_span(today.year, today.month)[1]
        found.add(text, m.start(), first, last)
    for pattern in (_MONTH_DAY, _DAY_MONTH):
        for m in pattern.finditer(text):
            if pattern is _DAY_MONTH and m.group("mon") == "may" and not (m.group("suf") or m.group("of")):
                continue  # "at 2 may I ..." is not May 2nd
            if any(a <= m.start() < b for a, b in taken):
                continue
            y = m.group("y")
            named = _next_month_day(today, _MONTHS[m.group("mon")], int(m.group("d")), int(y) if y else None)
            if named is not None:
                taken.append(m.span())
                found.add(text, m.start(), named, named)
    for m in _SLASH.finditer(text):
        y = m.group("y")
        year = None if y is None else int(y) + (2000 if len(y) == 2 else 0)
        numeric = _next_month_day(today, int(m.group("m")), int(m.group("d")), year)
        if numeric is not None:
            found.add(text, m.start(), numeric, numeric)
    for m in _DAY_OF_MONTH.finditer(text):
        if any(a <= m.start() < b for a, b in taken):
            continue
        prep, day_number = m.group("prep"), int(m.group("d"))
        if not (prep or m.group("suf")) or not (ordinals_are_days or prep == "on"):
            continue
        if prep is None and day_number <= 3:
            continue  # a bare "the 1st" / "the 2nd" picks or asks for the soonest; "on the 1st" is a day
        of_month = _next_day_of_month(today, int(m.group("d")))
        if of_month is not None:
            bound = prep if prep not in (None, "on", "for", "and", "to") else ""
            found.add(text, m.start(), of_month, of_month, bound)
    froms = [a for a, _ in found.spans] + found.froms
    tos = [b for _, b in found.spans] + found.tos
    date_from = max(min(froms), today) if froms else None
    date_to = max(tos) if tos else None
    if date_to is not None and date_to < today:
        date_to = None
    if date_from is not None and date_to is not None and date_to < date_from:
        date_to = None
    return date_from, date_to
