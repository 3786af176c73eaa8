"""The times of day a caller asks for ("at 2:30", "after 4", "late afternoon"), as clock bounds."""

from __future__ import annotations

import re
from datetime import time
from typing import Final

_TIME_ATOM: Final = re.compile(
    r"(?<![\d:/.])\b(?:(?P<q>half|quarter|a quarter) (?P<rel>past|after|to|till|before|of) (?P<qh>\d{1,2})"
    r"|(?P<noon>noon|midday)"
    r"|(?P<h>\d{1,2})(?:[:.](?P<m>[0-5]\d)| (?P<ms>[0-5]\d)\b(?! ?(?:st|nd|rd|th|minutes?|days?|weeks?|of))"
    r"| 0 (?P<mo>\d)\b)?"
    r"|(?P<hm>\d{3,4}))"
    r"(?![\d/:])(?! \d)"
    r"(?! ?(?:st|nd|rd|th|days?|weeks?|months?|years?|mins?|minutes?|hours?|hrs?|people|of|times)\b)"
    r"(?: ?(?P<mer>am|pm|oclock|in the morning|in the afternoon|in the evening|at night|tonight))?\b"
)
_TIME_PREP: Final = re.compile(
    r"(?:^|\s)(?P<p>after|past|from|not before|no earlier than|later than|starting at|start at|since"
    r"|before|by|until|till|til|not after|no later than|earlier than|up to"
    r"|at|around|about|for|say|maybe|how about|approximately|roughly|like|near|close to|closer to"
    r"|between|and|to|or|is)\s*$"
)
_NB_PREPS: Final = frozenset(
    {"after", "past", "from", "not before", "no earlier than", "later than", "starting at", "start at"}
    | {"since", "between"}
)
_NA_PREPS: Final = frozenset(
    {"before", "by", "until", "till", "til", "not after", "no later than", "earlier than", "up to"}
)
_AROUND_PREPS: Final = frozenset(
    {"around", "about", "approximately", "roughly", "like", "near", "close to", "closer to"}
)
_AM: Final = frozenset({"am", "in the morning"})
_PM: Final = frozenset({"pm", "in the afternoon", "in the evening", "at night", "tonight"})


def _t(hour: int, minute: int = 0) -> time:
    return time(hour, minute)


# (pattern, not_before, not_after, meridiem hint); the more specific phrases come first and are masked
# out of the text before the general ones run, so "early morning" is not also "morning".
_DAYPARTS: Final[tuple[tuple[re.Pattern[str], time | None, time | None, str | None], ...]] = tuple(
    (re.compile(pattern), nb, na, hint)
    for pattern, nb, na, hint in (
        (
            # the number words are digits by now: "first thing" reads "1st thing" ("1st thing you have"
            # is the soonest, not the morning)
            r"\bearly (?:in the )?mornings?\b|\b1st thing(?: in the morning\b|(?! (?:you|that|available)))",
            None,
            _t(10),
            "am",
        ),
        (r"\blate (?:in the )?mornings?\b", _t(10), _t(12), "am"),
        (r"\bearly (?:in the )?afternoons?\b", _t(12), _t(14), "pm"),
        (r"\blate (?:in the )?afternoons?\b", _t(15), _t(17), "pm"),
        (r"\bearly (?:in the )?evenings?\b", _t(17), _t(19), "pm"),
        (r"\bafter lunch(?: ?time)?\b", _t(13), None, "pm"),
        (r"\bbefore lunch(?: ?time)?\b", None, _t(12), "am"),
        (r"\bafter work\b", _t(17), None, "pm"),
        (r"\bafter school\b", _t(15), None, "pm"),
        (r"\bmornings?\b", None, _t(12), "am"),
        (r"\bafternoons?\b", _t(12), _t(17), "pm"),
        (r"\bevenings?\b|\btonight\b", _t(17), None, "pm"),
        (r"\b(?:lunch ?time|lunch|midday)\b", _t(11, 30), _t(13, 30), None),
        (
            r"\b(?:early in the day|as early as possible|something early|early one|early)\b"
            r"(?! (?:next|this|in the week|in the month|december|january))",
            None,
            _t(10),
            "am",
        ),
        (
            r"\b(?:late in the day|later in the day|end of the day|as late as possible|something late"
            r"|late one|last (?:slot|appointment|one) of the day)\b",
            _t(15),
            None,
            "pm",
        ),
    )
)


def _hour24(hour: int, meridiem: str | None, hint: str | None) -> int | None:
    if meridiem in _AM:
        return None if hour > 12 else hour % 12
    if meridiem in _PM:
        return hour if hour >= 12 else hour + 12
    if hour >= 13:
        return hour if hour <= 23 else None
    if hour == 0:
        return 0
    if hint == "pm":
        return hour if hour == 12 else hour + 12
    if hint == "am":
        return hour
    return hour + 12 if 1 <= hour <= 6 else hour


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _clock(minutes: int) -> time:
    minutes = max(0, min(minutes, 23 * 60 + 59))
    return time(minutes // 60, minutes % 60)


def _read_time(m: re.Match[str], hint: str | None, prep: str | None) -> time | None:
    """The clock time of one atom, or None when a bare number is not clearly a time."""
    mer = m.group("mer")
    if m.group("noon"):
        return time(12, 0)
    if m.group("q"):
        base = _hour24(int(m.group("qh")), mer, hint)
        if base is None:
            return None
        delta = 30 if m.group("q") == "half" else 15
        total = base * 60 + (-delta if m.group("rel") in ("to", "till", "before", "of") else delta)
        return _clock(total)
    if m.group("hm"):
        digits = m.group("hm")
        if prep is None and mer is None:
            return None
        hour, minute = int(digits[:-2]), int(digits[-2:])
        if minute >= 60:
            return None
    else:
        hour = int(m.group("h"))
        minute_text = m.group("m") or m.group("ms") or m.group("mo")
        minute = int(minute_text) if minute_text else 0
        explicit = m.group("m") is not None or mer is not None
        if not explicit and prep is None:
            return None
        if m.group("ms") is not None and prep is None and mer is None:
            return None
    if mer == "oclock":
        mer = None
    hour24 = _hour24(hour, mer, hint)
    if hour24 is None or hour24 > 23 or minute > 59:
        return None
    return time(hour24, minute)


def _parse_times(text: str) -> tuple[time | None, time | None]:
    masked = text
    hint: str | None = None
    part_nb: list[time | None] = []
    part_na: list[time | None] = []
    for pattern, nb, na, part_hint in _DAYPARTS:
        for m in pattern.finditer(masked):
            part_nb.append(nb)
            part_na.append(na)
            hint = hint or part_hint
            masked = masked[: m.start()] + " " * (m.end() - m.start()) + masked[m.end() :]
    # Several parts of day are alternatives ("morning or afternoon"): their union.
    not_before = None if not part_nb or None in part_nb else min(t for t in part_nb if t is not None)
    not_after = None if not part_na or None in part_na else max(t for t in part_na if t is not None)
    explicit_nb: time | None = None
    explicit_na: time | None = None
    windows: list[tuple[time, time]] = []  # "at 2 or 3": the union of the windows
    previous_prep: str | None = None
    for m in _TIME_ATOM.finditer(masked):
        p = _TIME_PREP.search(masked, max(0, m.start() - 20), m.start())
        prep = p.group("p") if p else None
        if prep == "or":
            prep = previous_prep
        elif prep == "and":
            prep = "until" if previous_prep == "between" else None
        elif prep == "to":
            prep = "until" if previous_prep in ("from", "between") else None
        elif prep == "is" and m.group("mer") is None:
            prep = None
        t = _read_time(m, hint, prep)
        if t is None:
            continue
        previous_prep = prep
        if prep in _NB_PREPS:
            explicit_nb = t if explicit_nb is None else min(explicit_nb, t)
        elif prep in _NA_PREPS or prep == "until":
            explicit_na = t if explicit_na is None else max(explicit_na, t)
        elif prep in _AROUND_PREPS:
            windows.append((_clock(_minutes(t) - 30), _clock(_minutes(t) + 30)))
        else:
            windows.append((t, _clock(_minutes(t) + 30)))
    if windows:
        if explicit_nb is None:
            explicit_nb = min(a for a, _ in windows)
        if explicit_na is None:
            explicit_na = max(b for _, b in windows)
    if explicit_nb is not None:
        not_before = explicit_nb if not_before is None else max(not_before, explicit_nb)
    if explicit_na is not None:
        not_after = explicit_na if not_after is None else min(not_after, explicit_na)
    if not_before is not None and not_after is not None and not_before >= not_after:
        not_before, not_after = explicit_nb, explicit_na  # contradiction: the explicit times win
        if not_before is not None and not_after is not None and not_before >= not_after:
            not_after = None
    return not_before, not_after
