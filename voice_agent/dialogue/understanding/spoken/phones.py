"""Callback numbers: the longest run of digits, however the caller grouped or the transcript spaced them."""

from __future__ import annotations

import re
from typing import Final

_PHONE_RUN: Final = re.compile(r"\+?\(?\d[\d().\-]*(?: +\(?\d[\d().\-]*)*")
_NON_DIGIT: Final = re.compile(r"\D")


def find_phone(num_text: str) -> str | None:
    """The longest run of 7 to 15 digits (spaces, dashes, dots and brackets between them allowed)."""
    best: str | None = None
    for m in _PHONE_RUN.finditer(num_text):
        digits = _NON_DIGIT.sub("", m.group())
        if 7 <= len(digits) <= 15 and (best is None or len(digits) > len(best)):
            best = digits
    return best
