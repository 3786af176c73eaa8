"""Keypad (DTMF) answers the dialogue takes: a date of birth as MMDDYYYY, a surname one press per letter."""

from __future__ import annotations

from datetime import date

from fhir_adapters.keypad import LETTER_KEYS

__all__ = ["keyed_date", "keyed_surname"]

#: As long as a name the name reader takes (one word of at most 40 letters).
_MAX_LETTERS = 40


def keyed_date(digits: str, *, today: date) -> date | None:
    """MMDDYYYY from the keypad; None unless it is a real, past date after 1900."""
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        born = date(int(digits[4:]), int(digits[:2]), int(digits[2:4]))
    except ValueError:
        return None
    return born if date(1900, 1, 1) <= born <= today else None


def keyed_surname(digits: str) -> str | None:
    """A surname keyed one press per letter (6566596 for Okonkwo); None unless every key carries
    letters (2 to 9: a 0, 1 or * spells nothing) and there are two to forty of them."""
    if not 2 <= len(digits) <= _MAX_LETTERS or not set(digits) <= LETTER_KEYS:
        return None
    return digits
