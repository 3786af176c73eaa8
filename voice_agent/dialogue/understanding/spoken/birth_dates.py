"""Birth dates as callers say them, for the identity check.

Apart from :mod:`.dates`: a birth date lies in the past and needs a year; a day asked for lies ahead.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Final

from .months import _MONTH, _MONTHS, _SUFFIX, _valid
from .numbers import _words

# Birth dates (the text has had spoken years joined: "19 85" -> "1985").
_BD_MONTH_FIRST: Final = re.compile(
    rf"\b{_MONTH}\.? (?:the )?(?P<d>\d{{1,2}}){_SUFFIX}(?: of)?,? (?:in |of )?(?P<y>\d{{4}}|\d{{2}})\b"
)
_BD_DAY_FIRST: Final = re.compile(
    rf"(?<![\d:.])\b(?:the )?(?P<d>\d{{1,2}}){_SUFFIX} (?:day )?(?:of )?{_MONTH}\.?,? (?:in |of )?"
    r"(?P<y>\d{4}|\d{2})\b"
)
_BD_ISO: Final = re.compile(r"\b(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})\b")
_BD_NUMERIC: Final = re.compile(r"\b(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<y>\d{4}|\d{2})\b")
_MONTH_ALT: Final = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
_BD_MONTH_ONLY: Final = re.compile(
    rf"\d(?:st|nd|rd|th)? (?:of )?{_MONTH_ALT}\b|\b{_MONTH_ALT}\.? (?:the )?\d"
)
_SPOKEN_YEAR: Final = re.compile(r"\b(19|20) (?:(\d\d)|0 (\d))\b")
_SEPARATOR_WORDS: Final = re.compile(r"\b(?:slash|dash|hyphen|dot|point)\b")
_DIGIT_GROUPS: Final = re.compile(r"\d+")
_LETTERS: Final = re.compile(r"[a-z]+")
# Words that may surround a birth date said as bare numbers ("it's 3 3 1985").
_BD_FILLER: Final = _words(
    "my date of birth birthday dob is its it was born on the i im am a d o b yes yeah sure ok okay "
    "um uh so thats that correct and in"
)


def _join_spoken_years(text: str) -> str:
    return _SPOKEN_YEAR.sub(lambda m: m.group(1) + (m.group(2) or "0" + (m.group(3) or "")), text)


def _birth(year_text: str, month: int, day: int, today: date) -> date | None:
    """Resolve a birth date: two-digit years to the century that makes it past and plausible."""
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return None
    oldest = today.year - 120
    if len(year_text) == 2:
        yy = int(year_text)
        for century in (2000, 1900):
            candidate = _valid(century + yy, month, day)
            if candidate is not None and candidate <= today and candidate.year >= oldest:
                return candidate
        return None
    candidate = _valid(int(year_text), month, day)
    if candidate is None or candidate > today or candidate.year < oldest:
        return None
    return candidate


def _month_and_day(a: int, b: int) -> tuple[int, int]:
    """US order (month first) unless the first number cannot be a month."""
    return (b, a) if a > 12 >= b else (a, b)


def parse_birth_date(num_text: str, today: date) -> tuple[date | None, bool]:
    """A birth date in ``num_text`` (output of :func:`spoken_numbers`): (the date, whether one was said).

    The second value is True when something date-like was said even if it was invalid (Feb 30, a
    future date, no year), so the caller can tell "unclear" from "not an answer".
    """
    text = _join_spoken_years(_SEPARATOR_WORDS.sub(" ", num_text))
    for pattern in (_BD_MONTH_FIRST, _BD_DAY_FIRST):
        m = pattern.search(text)
        if m:
            return _birth(m.group("y"), _MONTHS[m.group("mon")], int(m.group("d")), today), True
    m = _BD_ISO.search(text)
    if m:
        return _birth(m.group("y"), int(m.group("m")), int(m.group("d")), today), True
    m = _BD_NUMERIC.search(text)
    if m:
        month, day = _month_and_day(int(m.group("a")), int(m.group("b")))
        return _birth(m.group("y"), month, day, today), True
    if _BD_MONTH_ONLY.search(text):
        return None, True  # a month and a day but no year
    groups = _DIGIT_GROUPS.findall(text)
    if not groups or any(w not in _BD_FILLER for w in _LETTERS.findall(text)):
        return None, False
    if len(groups) == 3:
        if len(groups[0]) == 4:
            return _birth(groups[0], int(groups[1]), int(groups[2]), today), True
        if len(groups[2]) in (2, 4) and len(groups[0]) <= 2 and len(groups[1]) <= 2:
            month, day = _month_and_day(int(groups[0]), int(groups[1]))
            return _birth(groups[2], month, day, today), True
    digits = "".join(groups)
    if len(digits) in (6, 8):  # keypad style: MMDDYY or MMDDYYYY
        month, day = _month_and_day(int(digits[:2]), int(digits[2:4]))
        return _birth(digits[4:], month, day, today), True
    return None, len(digits) >= 3
