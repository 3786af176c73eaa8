"""Whether words already heard are a whole answer to the question asked, so turn-taking may answer now
instead of waiting out a pause the smart-turn model was unsure of.

Pure: the rules' reading of the words and the question asked in, a yes or no out. It only ever decides
*when* the agent answers, never *what*: the turn is then understood and handled as any other. A wrong
"yes" costs an answer the caller talks over (barge-in), a wrong "no" the maximum pause, so it says yes
only for clean, closed answers: a whole name, a whole date, yes or no, one of the options, a request
the rules are sure of, and anything a guardrail stops (an emergency is answered at once).
"""

from __future__ import annotations

import re
from typing import Final

from voice_agent.dialogue.understanding import Expectation, Intent, Understood
from voice_agent.dialogue.understanding.guardrails import GUARDED_INTENTS
from voice_agent.dialogue.understanding.rules.confidence import HIGH

__all__ = ["trails_off", "whole_answer"]

#: A turn ending on one of these is a sentence still under way ("It's Maria and ...", "born on the").
_TRAILING: Final = re.compile(
    r"\b(?:and|or|but|so|um+|uh+|er+m?|hmm+|the|a|an|of|on|in|at|with|for|to|my|is|it's|its|was|"
    r"born|name|date|birth|birthday|actually|wait|sorry|no wait|i mean|like|maybe|about|from|"
    r"around|between|before|after|then)\W*$",
    re.IGNORECASE,
)
_REQUESTS: Final = frozenset(
    {Intent.BOOK, Intent.CANCEL, Intent.RESCHEDULE, Intent.LIST_APPOINTMENTS, Intent.ASK_AVAILABILITY}
)
_CLOSING: Final = frozenset({Intent.GOODBYE, Intent.HUMAN, Intent.REPEAT})
_YES_NO: Final = frozenset({Intent.AFFIRM, Intent.DENY, Intent.NOTHING_ELSE})


def trails_off(words: str) -> bool:
    """Whether the words stop mid-sentence (on "and", "the", "um", a correction's "sorry")."""
    return _TRAILING.search(words.strip()) is not None


def whole_answer(asked: Expectation, answer: Understood, words: str) -> bool:
    """Whether ``answer`` (the rules' reading of ``words``) is a whole answer to ``asked``."""
    if answer.intent in GUARDED_INTENTS:
        return True
    if trails_off(words) or answer.confidence < HIGH:
        return False
    if answer.intent in _CLOSING:
        return True
    slots = answer.slots
    if asked is Expectation.FULL_NAME:
        return bool(slots.given_name and slots.family_name)
    if asked is Expectation.BIRTH_DATE:
        return slots.birth_date is not None
    if asked in (Expectation.CHOOSE_SLOT, Expectation.CHOOSE_APPOINTMENT):
        return answer.intent is Intent.CHOOSE_OPTION and slots.option is not None
    if asked in (Expectation.CONFIRM, Expectation.CALLBACK, Expectation.ANYTHING_ELSE):
        return answer.intent in _YES_NO and not slots.phone
    if asked is Expectation.TASK:
        return answer.intent in _REQUESTS
    return False  # a preference ("when would you like to come in?") is open-ended: smart-turn decides
