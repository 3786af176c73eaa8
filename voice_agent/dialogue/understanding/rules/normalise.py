"""Normalisation: the caller's words once, in each form the rules read (as said, folded, bare words,
numbers as digits), so no pattern has to cope with punctuation, fillers or spelled-out numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ..spoken import MAX_CHARS, fold, spoken_numbers


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_YES_SOUNDS: Final = re.compile(r"\b(?:uh[ -]?huh|mm[ -]?hmm+|mhm+|mm+ hm+)\b")
_MERIDIEM_DOTS: Final = re.compile(r"\b([ap])\. ?m\b\.?")
_MERIDIEM_GLUED: Final = re.compile(r"(\d)([ap])m\b")
_MERIDIEM_SPACED: Final = re.compile(r"(\d) ([ap]) m\b")
_OCLOCK: Final = re.compile(r"\bo ?clock\b")
_NON_WORD: Final = re.compile(r"[^\w\s:/.\-]|_")
_LONE_PUNCT: Final = re.compile(r"(?<!\d)[:/.]|[:/.](?!\d)")
_HYPHEN: Final = re.compile(r"(?<!\d)-|-(?!\d)")
_MOMENT: Final = re.compile(r"\b(?:just |wait |hold on |hang on )?(?:a|one) (?:second|sec|minute|moment)\b")
_FILLER: Final = re.compile(r"\b(?:um+|uh+|uhm+|erm+|er|ah+|hmm+|hm+|mm+|eh|you know|i mean)\b")


@dataclass(frozen=True)
class _Text:
    raw: str  # capped original: names keep their accents and case
    folded: str  # lower-case, accent-free: what the guardrails read
    words: str  # no punctuation, apostrophes or fillers: what the intent patterns read
    num: str  # ``words`` with spoken numbers as digits: dates, times, options, phone numbers


def _prepare(utterance: str) -> _Text:
    raw = utterance[:MAX_CHARS]
    folded = fold(raw)
    text = _YES_SOUNDS.sub(" yes ", folded.replace("'", ""))
    text = _MERIDIEM_DOTS.sub(r"\1m", text)
    text = _MERIDIEM_SPACED.sub(r"\1 \2m", _MERIDIEM_GLUED.sub(r"\1 \2m", text))
    text = _OCLOCK.sub(" oclock ", text)
    text = _HYPHEN.sub(" ", _LONE_PUNCT.sub(" ", _NON_WORD.sub(" ", text)))
    text = _FILLER.sub(" ", _MOMENT.sub(" moment ", text))
    words = " ".join(text.split())
    return _Text(raw, folded, words, spoken_numbers(words))
