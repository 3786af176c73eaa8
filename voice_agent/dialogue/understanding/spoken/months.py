"""Month names and the calendar check shared by birth dates and appointment dates.

One table, so a birth date and an appointment date accept the same spellings ("sept", "febuary").
"""

from __future__ import annotations

from datetime import date
from typing import Final

_MONTHS: Final = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "febuary": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}
_MONTH: Final = "(?P<mon>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
_SUFFIX: Final = r"(?P<suf>st|nd|rd|th)?"


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
