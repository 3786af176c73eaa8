"""A surname spelled aloud and heard over a phone line, compared with a record's: letters that sound
alike on the phone ("B", "D", "E", "P", "T" ...) are easy to mishear, so they count for half an error.

Pure and small. Hand-written because what it weighs is the telephone's confusions of *letter names*
(the E-set, M/N, F/S/X), which no string-distance library knows: ``jellyfish``'s distances weigh every
substitution the same.
"""

from __future__ import annotations

import unicodedata
from typing import Final

__all__ = ["first_letters", "spelled_alike"]

#: Letter names that sound alike through 8 kHz: B C D E G P T V Z ("ee"), M N, F S X ("eh-"), A J K
#: ("ay"), I Y ("eye"/"why"), Q U W ("you"). Measured: tiny.en wrote flite's and espeak-ng's spellings with
#: most of its letter errors inside these groups.
_GROUPS: Final = ("bcdegptvz", "mn", "fsx", "ajk", "iy", "quw")
_GROUP_OF: Final = {letter: group for group in _GROUPS for letter in group}
#: Errors allowed per letter of the record's surname (and at least one): "Okonkwo" heard "OKONKNO" is one
#: full error (W for N) of 7 letters; "Whitfield" for "Okonkwo" is nine. A surname of four letters or fewer
#: allows one alike-sounding letter only ("Ross" for "Moss" is a whole error, refused).
_ERRORS_PER_LETTER: Final = 0.3
_SHORT: Final = 4


def _letters(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).casefold()
    return "".join(c for c in folded if "a" <= c <= "z")


def _cost(a: str, b: str) -> float:
    if a == b:
        return 0.0
    return 0.5 if _GROUP_OF.get(a, a) == _GROUP_OF.get(b, b) and a in _GROUP_OF else 1.0


def letter_distance(heard: str, recorded: str) -> float:
    """Levenshtein over letters, a substitution within a group of alike letter names costing 0.5."""
    a, b = _letters(heard), _letters(recorded)
    previous = [float(j) for j in range(len(b) + 1)]
    for i, x in enumerate(a, 1):
        current = [float(i)]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + _cost(x, y)))
        previous = current
    return previous[-1]


def spelled_alike(heard: str, recorded: str) -> bool:
    """Whether letters heard are a telephone-mangled spelling of ``recorded`` (or exactly it)."""
    target = _letters(recorded)
    if not target or not _letters(heard):
        return False
    allowed = 0.5 if len(target) <= _SHORT else max(1.0, _ERRORS_PER_LETTER * len(target))
    return letter_distance(heard, target) <= allowed


def first_letters(heard: str) -> str:
    """The letters the record's surname may begin with, given the first letter heard: it and those whose
    names sound like it ("" when nothing was heard)."""
    letters = _letters(heard)
    if not letters:
        return ""
    return _GROUP_OF.get(letters[0], letters[0])
