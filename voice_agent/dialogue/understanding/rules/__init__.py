"""Deterministic understanding: patterns over the caller's words, disambiguated by the question asked.

Why rules at all: they answer in microseconds on every turn, never invent a practitioner, a slot or a
date, and they are the safety net when the LLM is absent, slow or wrong. Their confidence is honest
(>= 0.85 only when a clear pattern matched and the current question got its answer; < 0.6 when guessing;
UNKNOWN <= 0.3), so the hybrid backend asks the LLM exactly when the rules are unsure.

Interpretation rules (dates, times and numbers: see :mod:`.spoken`):

* Guardrails (:mod:`.guardrails`) run first and win: emergency and crisis -> EMERGENCY, then
  CHANGE_RULES, OTHER_PERSON, MEDICAL_ADVICE, all at 0.95.
* Names (after "full name?"): given = every word but the last, family = the last word. A hyphenated
  or apostrophe surname is one word; surname particles (O, Mc, de, la, van, ...) before the last word
  join the family name while a given name remains ("Siobhan O Brien" -> Siobhan / O Brien,
  "Al Ng" -> Al / Ng). "Smith, John" (with a comma) is family first. Text is kept as said, except that an
  all-lower or all-upper name is title-cased. The dialogue tries the other splits itself.
* Practitioners: accent-, case- and punctuation-blind match on the full name, the surname or one part
  of a double-barrelled surname, the given name, or an alias; a trailing "s" is tolerated ("doctor
  parks"), and one spelling slip for names of five letters or more. A bare given name, or a surname of
  four letters or fewer (Park: "where do I park?"), counts only after "doctor", "with", "see" and the
  like, or when the question was about whom. Ambiguous or unknown -> no practitioner and
  confidence <= 0.5.
* Visit types: code, display, aliases and common phrasings (physical/check-up, follow up, shot/vaccine,
  video/virtual/phone visit, new patient/first visit), only when the phrase points at exactly one of
  the clinic's visit types.
* Options: "the first/second/last one", "number two", "the 10:30", "the one with Dr. Park", "the
  Friday one", matched against what was just offered; a pick that is not unique is no pick.
* "look at an appointment" is read as Whisper's mishearing of "book an appointment", with confidence
  0.55 so the LLM, when there is one, has the last word.
* Yes/no: a whole utterance of affirmations ("yeah that's right thanks") is a sure AFFIRM; a leading
  "yes" before other words is a likely one; "yes, no, wait" is UNKNOWN. After "anything else?" a "no"
  is NOTHING_ELSE. A task named after any question ("actually, cancel it") switches the task.
* Only a clear booking verb, a practitioner or a visit type makes a bare answer a BOOK; a date alone
  after "How can I help?" is PROVIDE_INFO at 0.5.
"""

from __future__ import annotations

import logging

from ..base import Intent, UnderstandingContext, Understood
from ..corrections import corrected
from ..guardrails import intent_of, screen_folded
from ..spoken import MAX_CHARS, fold
from .confidence import SURE
from .turns import _parse, _understood

__all__ = ["RulesUnderstanding"]

log = logging.getLogger(__name__)


class RulesUnderstanding:
    """The always-on backend: deterministic, no I/O, well under a millisecond per utterance."""

    def parse(self, utterance: str, context: UnderstandingContext) -> Understood:
        """Understand one caller turn; never raises, whatever the speech-to-text produced."""
        try:
            if not context.screened:  # the screen once per turn: here, or by the conductor before
                guard = screen_folded(fold(utterance[:MAX_CHARS]))
                if guard is not None:
                    return _understood(intent_of(guard.kind), SURE)
            return corrected(utterance, lambda words: _parse(words, context))
        except Exception as error:  # a live call must go on: an unexpected input is "not understood"
            log.warning("rules understanding failed (%s)", type(error).__name__)  # the type only: no PHI
            return Understood(intent=Intent.UNKNOWN, confidence=0.0)

    async def understand(self, utterance: str, context: UnderstandingContext) -> Understood:
        return self.parse(utterance, context)
