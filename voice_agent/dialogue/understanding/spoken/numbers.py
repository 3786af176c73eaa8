"""Folding and number words: every other reader here works on text that has been through both.

``fold`` makes "Sofía" and "sofia" the same text; ``spoken_numbers`` turns "two thirty" into "2 30".
"""

from __future__ import annotations

import unicodedata
from typing import Final

MAX_CHARS: Final = 500  # longer input is cut: a caller turn is never this long, junk can be

_TRANSLATE: Final = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "`": "'",
        "\u00b4": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": " ",
        "\u00a0": " ",
    }
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def fold(text: str) -> str:
    """Cap, lower-case and strip accents: "Sofía" and "sofia" must compare equal, as callers say both."""
    text = text[:MAX_CHARS].translate(_TRANSLATE)
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.casefold()


_UNITS: Final = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_TEENS: Final = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS: Final = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_ORD_UNITS: Final = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
}
_ORD_OTHER: Final = {
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}
_NUMBER_WORDS: Final = frozenset(
    [*_UNITS, *_TEENS, *_TENS, *_ORD_UNITS, *_ORD_OTHER, "hundred", "thousand", "oh"]
)
# "one" is a pronoun in "the one with Dr. Park"; it is a number only next to these or other numbers.
_ONE_AFTER: Final = frozenset(
    {"number", "option", "choice", "at", "is", "around", "about", "by", "after", "before", "until", "till"}
    | {"from", "to", "and", "between", "or", "say", "#", "no", "slot"}
)
_MERIDIEM_WORDS: Final = frozenset({"am", "pm", "oclock", "thirty", "fifteen", "forty", "fourty"})


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _is_num(token: str) -> bool:
    return token.isdigit() or token in _NUMBER_WORDS


def _read_small(src: list[str], i: int) -> tuple[int, int, bool] | None:
    """A number below 100 starting at ``src[i]``: (value, next index, is ordinal)."""
    word = src[i]
    nxt = src[i + 1] if i + 1 < len(src) else ""
    if word in _TENS:
        value = _TENS[word]
        if nxt in _UNITS and _UNITS[nxt] > 0:
            return value + _UNITS[nxt], i + 2, False
        if nxt in _ORD_UNITS:
            return value + _ORD_UNITS[nxt], i + 2, True
        return value, i + 1, False
    if word in _TEENS:
        return _TEENS[word], i + 1, False
    if word in _UNITS:
        return _UNITS[word], i + 1, False
    if word in _ORD_UNITS:
        return _ORD_UNITS[word], i + 1, True
    if word in _ORD_OTHER:
        return _ORD_OTHER[word], i + 1, True
    return None


def _one_is_number(src: list[str], out: list[str], i: int) -> bool:
    if len(src) == 1:
        return True
    prev = out[-1] if out else ""
    nxt = src[i + 1] if i + 1 < len(src) else ""
    return prev.isdigit() or prev in _ONE_AFTER or _is_num(nxt) or nxt in _MERIDIEM_WORDS


def spoken_numbers(text: str) -> str:
    """Turn number words into digits, keeping separate numbers separate.

    "two thirty" -> "2 30", "nineteen eighty five" -> "19 85", "twenty-third" -> "23rd",
    "five five five" -> "5 5 5", "double five" -> "5 5", "two thousand and five" -> "2005".
    Spacing is kept so callers of this function decide what a run of numbers means.
    """
    src: list[str] = []
    for word in text.split():
        if "-" in word and not word[0].isdigit():
            parts = word.split("-")
            if all(p in _NUMBER_WORDS for p in parts):
                src.extend(parts)
                continue
        src.append(word)
    out: list[str] = []
    i, n = 0, len(src)
    while i < n:
        word = src[i]
        if word not in _NUMBER_WORDS and word not in ("double", "triple", "o"):
            out.append(word)  # the common case, kept cheap: most words are not numbers
            i += 1
            continue
        nxt = src[i + 1] if i + 1 < n else ""
        if word in ("double", "triple") and (nxt in _UNITS or (len(nxt) == 1 and nxt.isdigit())):
            digit = str(_UNITS[nxt]) if nxt in _UNITS else nxt
            out.extend([digit] * (2 if word == "double" else 3))
            i += 2
            continue
        if word in ("oh", "o") and out and out[-1].isdigit() and (nxt in _UNITS or nxt.isdigit()):
            out.append("0")
            i += 1
            continue
        if word == "one" and not _one_is_number(src, out, i):
            out.append(word)
            i += 1
            continue
        read = _read_small(src, i)
        if read is None:
            out.append(word)
            i += 1
            continue
        value, j, is_ordinal = read
        if not is_ordinal and j < n and src[j] == "hundred":
            value, j = value * 100, j + 1
            value, j = _add_tail(src, j, value)
        if not is_ordinal and j < n and src[j] == "thousand":
            value, j = value * 1000, j + 1
            k = j + 1 if j < n and src[j] == "and" else j
            tail = _read_small(src, k) if k < n else None
            if tail is not None and not tail[2]:
                tail_value, tail_end, _ = tail
                if tail_end < n and src[tail_end] == "hundred":
                    tail_value, tail_end = _add_tail(src, tail_end + 1, tail_value * 100)
                value, j = value + tail_value, tail_end
        out.append(_ordinal(value) if is_ordinal else str(value))
        i = j
    return " ".join(out)


def _add_tail(src: list[str], j: int, value: int) -> tuple[int, int]:
    """ "... hundred (and) forty two": add the tail below 100 if one follows."""
    k = j + 1 if j < len(src) and src[j] == "and" else j
    if k < len(src):
        tail = _read_small(src, k)
        if tail is not None and not tail[2]:
            after = src[tail[1]] if tail[1] < len(src) else ""
            if tail[0] < 10 and (after in _UNITS or after.isdigit()):
                return value, j  # "eight hundred five five five": digits of a phone number follow
            return value + tail[0], tail[1]
    return value, j
