"""Keypad (DTMF) answers the dialogue takes: a date of birth as MMDDYYYY."""

from __future__ import annotations

from datetime import date

__all__ = ["keyed_date"]


def keyed_date(digits: str, *, today: date) -> date | None:
    """MMDDYYYY from the keypad; None unless it is a real, past date after 1900."""
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        born = date(int(digits[4:]), int(digits[:2]), int(digits[2:4]))
    except ValueError:
        return None
    return born if date(1900, 1, 1) <= born <= today else None
