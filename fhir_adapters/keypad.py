"""Letters on a phone keypad (ITU E.161): a surname keyed one press per letter, as T9 reads it.

Pure and shared: the gateway compares a record's surname with the caller's keys here, and the dialogue
checks that keys could spell anything at all (``fhir_adapters`` imports nothing from ``voice_agent``).
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["LETTER_KEYS", "keypad_digits", "letters_on"]

_LETTERS: Final = {
    "2": "abc",
    "3": "def",
    "4": "ghi",
    "5": "jkl",
    "6": "mno",
    "7": "pqrs",
    "8": "tuv",
    "9": "wxyz",
}
_KEY_OF: Final = {letter: key for key, letters in _LETTERS.items() for letter in letters}
#: The keys that carry letters: 0, 1, * and # spell nothing.
LETTER_KEYS: Final = frozenset(_LETTERS)


def keypad_digits(name: str) -> str:
    """The keys that spell ``name``, one per letter: accents folded, everything but a-z dropped
    (hyphens, apostrophes, spaces), so "O'Brien" and "Muñoz" are keyed as 627436 and 68669. A letter
    that does not fold to a-z (Ø, Ł) is dropped too, as ``normalise_name`` drops it."""
    folded = unicodedata.normalize("NFKD", name).casefold()
    return "".join(_KEY_OF.get(c, "") for c in folded)


def letters_on(key: str) -> str:
    """The letters one key carries ("6" -> "mno"); none for a key that carries no letters."""
    return _LETTERS.get(key, "")
