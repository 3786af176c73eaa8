"""Cues and slots for one utterance: the task, yes, no or request it carries and the dates, practitioner,
visit type, phone number and option it names, before the question asked decides between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from ..base import Expectation, Intent, UnderstandingContext
from ..spoken import When, find_phone, parse_when
from .confidence import GUESS, HIGH, MEDIUM
from .directory import _match_practitioner, _match_visit_type, _PractitionerMatch
from .normalise import _Text
from .options import _match_option, _Option
from .patterns import (
    _AFFIRM_CORE,
    _AFFIRM_EXTRA,
    _AFFIRM_LEAD,
    _AFFIRM_PHRASE,
    _AVAILABILITY,
    _BOOK,
    _BOOK_AGAIN,
    _BOOK_MISHEARD,
    _CANCEL,
    _CANCEL_WEAK,
    _CANT_CLAUSE,
    _DENY_CORE,
    _DENY_EXTRA,
    _DENY_LEAD,
    _DENY_PHRASE,
    _DENY_WORD,
    _GOODBYE,
    _HUMAN,
    _LIST,
    _NOT_HUMAN_QUESTION,
    _NOTHING_ELSE,
    _PHONE_CUE,
    _REPEAT,
    _RESCHEDULE,
    _RESCHEDULE_WEAK,
    _SELF_INTRO,
    _only,
)

_CHOOSING: Final = frozenset({Expectation.CHOOSE_SLOT, Expectation.CHOOSE_APPOINTMENT})


@dataclass(frozen=True)
class _Cues:
    human: bool
    repeat: bool
    goodbye: bool
    nothing_else: bool
    affirm: int  # 2: the whole utterance affirms; 1: it leads with or contains an affirmation
    deny: int
    task: Intent | None
    task_confidence: float


def _cues(words: str, expecting: Expectation, when_found: bool) -> _Cues:
    task: Intent | None = None
    task_confidence = 0.0
    book = _BOOK.search(words) is not None
    cancel = _CANCEL.search(words) is not None
    if _RESCHEDULE.search(words) or (cancel and _BOOK_AGAIN.search(words)):
        task, task_confidence = Intent.RESCHEDULE, HIGH
    elif cancel:
        task, task_confidence = Intent.CANCEL, HIGH
    elif _CANCEL_WEAK.search(words):
        task, task_confidence = (Intent.RESCHEDULE, MEDIUM) if when_found or book else (Intent.CANCEL, 0.7)
    elif _LIST.search(words):
        task, task_confidence = Intent.LIST_APPOINTMENTS, HIGH
    elif book:
        task, task_confidence = Intent.BOOK, HIGH
    elif _AVAILABILITY.search(words):
        task, task_confidence = Intent.ASK_AVAILABILITY, HIGH
    elif expecting in (Expectation.TASK, Expectation.ANYTHING_ELSE) and _RESCHEDULE_WEAK.search(words):
        task, task_confidence = Intent.RESCHEDULE, 0.7
    elif _BOOK_MISHEARD.search(words):
        task, task_confidence = Intent.BOOK, 0.55
    affirm = (
        2
        if _only(words, _AFFIRM_CORE, _AFFIRM_EXTRA)
        else 1
        if _AFFIRM_LEAD.match(words) or _AFFIRM_PHRASE.search(words)
        else 0
    )
    deny = (
        2
        if _only(words, _DENY_CORE, _DENY_EXTRA)
        else 1
        if _DENY_LEAD.match(words) or _DENY_PHRASE.search(words)
        else 0
    )
    if affirm and not deny and _DENY_WORD.search(words):
        deny = 1  # "yes, no, wait": a change of mind
    if deny and affirm == 2:
        affirm = 0 if _DENY_LEAD.match(words) else affirm
    if affirm and deny == 2:
        deny = 0 if _AFFIRM_LEAD.match(words) else deny
    return _Cues(
        human=_HUMAN.search(words) is not None and not _NOT_HUMAN_QUESTION.search(words),
        repeat=_REPEAT.search(words) is not None,
        goodbye=_GOODBYE.search(words) is not None,
        nothing_else=_NOTHING_ELSE.search(words) is not None,
        affirm=affirm,
        deny=deny,
        task=task,
        task_confidence=task_confidence,
    )


@dataclass
class _Found:
    """Slots read from the utterance and how sure they are."""

    when: When
    wish: bool  # dates or times were asked for, not only named as the ones that do not work
    practitioner: _PractitionerMatch
    visit_type: str | None
    visit_ambiguous: bool
    phone: str | None
    option: _Option

    @property
    def preferences(self) -> bool:
        return self.when.found or self.practitioner.schedule_id is not None or self.visit_type is not None

    @property
    def unsure(self) -> bool:
        """Something was said that could not be resolved: the answer must not look confident."""
        p = self.practitioner
        return self.visit_ambiguous or (p.mentioned and p.schedule_id is None)

    def slots(self, *, include_option: bool = True) -> dict[str, object]:
        w = self.when
        out: dict[str, object] = {
            "date_from": w.date_from,
            "date_to": w.date_to,
            "time_not_before": w.not_before,
            "time_not_after": w.not_after,
            "practitioner": self.practitioner.schedule_id,
            "visit_type": self.visit_type,
        }
        if self.phone is not None:
            out["phone"] = self.phone
        if w.open_ended:
            out["soonest"] = True
        if include_option and self.option.option is not None and not self.option.negated:
            out["option"] = self.option.option
        return {k: v for k, v in out.items() if v is not None}


def _find(t: _Text, ctx: UnderstandingContext) -> _Found:
    exp = ctx.expecting
    callback = exp is Expectation.CALLBACK
    phone = find_phone(t.num) if callback or _PHONE_CUE.search(t.words) else None
    wish = True  # the dates said are ones the caller wants (not "I can't make it Tuesday")
    if phone is not None or callback:
        when = When()
    else:
        today, days = ctx.now.date(), exp not in _CHOOSING
        when = parse_when(t.num, today, ordinals_are_days=days)
        cant = _CANT_CLAUSE.search(t.num)
        if cant is not None and when.found:
            # "I can't make it Tuesday, can we do Wednesday": the day that does not work is not a wish.
            rest = parse_when(
                t.num[: cant.start()] + " " + t.num[cant.end() :], today, ordinals_are_days=days
            )
            if rest.date_from is not None or rest.date_to is not None:
                when = rest
            else:
                wish = False
    words = t.words if exp in _CHOOSING else _SELF_INTRO.sub(" ", t.words)
    practitioner = (
        _match_practitioner(words, ctx.practitioners, eager=exp is Expectation.PREFERENCE or exp in _CHOOSING)
        if ctx.practitioners
        else _PractitionerMatch(None, False)
    )
    visit_type, ambiguous = _match_visit_type(t.words, ctx.visit_types) if ctx.visit_types else (None, False)
    option = _match_option(t, ctx, practitioner.schedule_id) if exp in _CHOOSING else _Option(None, False)
    return _Found(when, wish and when.found, practitioner, visit_type, ambiguous, phone, option)


def _capped(confidence: float, found: _Found) -> float:
    if found.unsure:
        return min(confidence, GUESS)
    if found.practitioner.fuzzy:
        return min(confidence, MEDIUM)
    return confidence
