"""Spelled letters: the one grammar of a word said letter by letter, for every reader that needs it.

Callers spell "O K O N K W O", "P as in Peter, A R K" (also "N for Nancy", "M like Mike"),
"O apostrophe B R I E N", "H E R N A N D E Z hyphen R U I Z"; Whisper writes a spelling as
"O-K-O-N-K-W-O" or "O. K. O.". The name reader takes a whole spelled answer as one word
(``spelled_word``) and joins spelled runs inside a name (``said_mark``); the identity task waits while
an answer is only letters so far (``spelled_so_far``), since letters come with pauses between them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from .numbers import fold

__all__ = ["COMMA", "TOKENS", "letters_said_as", "said_mark", "spelled_so_far", "spelled_word"]

#: A word (inner hyphens and apostrophes kept: "O'Brien", "O-K-O"), a comma, or a digit.
TOKENS: Final = re.compile(r"[^\W\d_]+(?:['\-][^\W\d_]+)*|,|\d")
COMMA: Final = ","
#: Said between spelled letters: "O apostrophe B R I E N", "H E R N A N D E Z hyphen R U I Z".
_MARKS: Final = {"hyphen": "-", "dash": "-", "apostrophe": "'"}
#: "P as in Peter", "N for Nancy", "M like Mike": the letter alone.
_SAID_AS: Final = re.compile(r"\b([^\W\d_])\s*(?:,\s*)?(?:as in|for|like)\s+[^\W\d_]+\b", re.IGNORECASE)
#: Whisper often writes a spelling "O-K-O-N-K-W-O".
_HYPHENATED_LETTERS: Final = re.compile(r"[^\W\d_](?:-[^\W\d_])+")


def letters_said_as(text: str) -> str:
    """Each "P as in Peter" reduced to its letter ("P")."""
    return _SAID_AS.sub(lambda m: m.group(1).upper(), text)


def said_mark(token: str) -> str | None:
    """The character a word said between letters stands for ("apostrophe" -> "'"), if it is one."""
    return _MARKS.get(fold(token))


def spelled_word(tokens: Sequence[str], *, min_letters: int = 2) -> str | None:
    """The letters and marks of an answer that is nothing but spelled letters (commas between them
    allowed), joined as written ("O'BRIEN"); None if any part is more than one letter, a digit, or the
    answer starts with a mark or has fewer than ``min_letters`` letters."""
    parts: list[str] = []
    for token in tokens:
        if token == COMMA:
            continue
        if _HYPHENATED_LETTERS.fullmatch(token):
            parts.extend(token.split("-"))
        else:
            parts.append(said_mark(token) or token)
    if not parts or sum(p.isalpha() for p in parts) < min_letters or not parts[0].isalpha():
        return None
    if any(len(p) != 1 or p.isdigit() for p in parts):
        return None
    return "".join(parts)


def spelled_so_far(text: str) -> bool:
    """Whether the words so far are only spelled letters, one or more ("O, K, O", "P as in Peter, A",
    "o apostrophe b"): a spelling said with pauses, to be gathered into one answer."""
    tokens = TOKENS.findall(letters_said_as(fold(text)))
    return spelled_word(tokens, min_letters=1) is not None
