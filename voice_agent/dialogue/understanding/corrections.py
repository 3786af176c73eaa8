"""Self-corrections inside one turn: "the 28th, sorry, the 29th", "no wait, Tuesday", "Anna, I mean
Ana Quispe". People correct themselves mid-sentence; the last value said is the one they mean.

The turn is understood whole and again from just after its last correction marker; each group of slots
the tail states (a day range, a time window, a full name, a birth date...) replaces the whole turn's,
and the tail's intent is taken where the whole was not understood. A tail that states nothing leaves
the turn as it was, so "sorry, what?" is still a request to repeat.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

from .base import Intent, Understood
from .guardrails import GUARDED_INTENTS

__all__ = ["corrected", "split_correction"]

#: Words that take back what was just said. "actually" only before a value would be too narrow to
#: find; it is a marker wherever it stands, which at worst re-reads a tail that says the same thing.
_MARKER: Final = re.compile(
    r"\b(?:sorry|no,? wait|wait,? no|no,? no|i mean|i meant|actually|or rather|rather|scratch that|"
    r"correction|make that|let me correct that|oops|my mistake|my bad)\b[\s,.!;:-]*",
    re.IGNORECASE,
)

#: Slots that are one value together: a tail that states any of a group replaces the whole group.
_GROUPS: Final = (
    ("date_from", "date_to", "soonest"),
    ("time_not_before", "time_not_after"),
    ("given_name", "family_name"),
    ("birth_date",),
    ("practitioner",),
    ("visit_type",),
    ("option",),
    ("phone",),
)


def split_correction(utterance: str) -> str | None:
    """The words after the last correction marker, or None when there is none (or nothing after it)."""
    markers = list(_MARKER.finditer(utterance))
    if not markers:
        return None
    last = markers[-1]
    tail = utterance[last.end() :].strip(" ,.!?;:-")
    return tail or None


def corrected(utterance: str, parse: Callable[[str], Understood]) -> Understood:
    """``parse(utterance)``, with whatever the caller said after their last correction winning."""
    whole = parse(utterance)
    tail_words = split_correction(utterance)
    if tail_words is None or whole.intent in _KEEP:
        return whole
    tail = parse(tail_words)
    if tail.intent in _KEEP:
        return whole
    said = tail.slots.model_dump(exclude_none=True)
    updates: dict[str, object] = {}
    for group in _GROUPS:
        if any(name in said for name in group):
            updates |= {name: said.get(name) for name in group}
    if not updates and tail.intent is whole.intent:
        return whole
    intent, confidence = whole.intent, whole.confidence
    if whole.intent in (Intent.UNKNOWN, Intent.REPEAT) or (
        updates and whole.intent is Intent.AFFIRM and tail.intent is not Intent.AFFIRM
    ):
        intent, confidence = tail.intent, tail.confidence
    if intent is Intent.UNKNOWN:
        return whole
    slots = whole.slots.model_copy(update=updates)
    return whole.model_copy(update={"intent": intent, "confidence": confidence, "slots": slots})


#: Intents that stand whatever follows: a guardrail heard anywhere in the turn is never corrected away,
#: nor is a request for a person.
_KEEP: Final = GUARDED_INTENTS | {Intent.HUMAN}
