"""Turns: one utterance read in the light of the question just asked (name, birth date, a choice, a
confirmation, a callback number, anything else) into one ``Understood``."""

from __future__ import annotations

from datetime import date

from ..base import Expectation, Intent, Slots, UnderstandingContext, Understood
from ..spoken import parse_birth_date
from .confidence import GUESS, HIGH, MEDIUM, NOTHING, SURE
from .cues import _CHOOSING, _capped, _Cues, _cues, _find, _Found
from .names import _NAME_MARKERS, _extract_name
from .normalise import _prepare, _Text
from .patterns import _HESITATION, _SAME_NUMBER


def _understood(intent: Intent, confidence: float, slots: dict[str, object] | None = None) -> Understood:
    return Understood(intent=intent, slots=Slots.model_validate(slots or {}), confidence=confidence)


def _name_turn(t: _Text, ctx: UnderstandingContext, cues: _Cues) -> Understood:
    name = _extract_name(t.raw)
    slots: dict[str, object] = {}
    birth: date | None = None
    marker = _NAME_MARKERS.search(t.num)
    if marker is not None:
        birth, _ = parse_birth_date(t.num[marker.end() :], ctx.now.date())
        if birth is not None:
            slots["birth_date"] = birth
    if name is not None and (name.introduced or not (cues.human or cues.repeat or cues.task or cues.goodbye)):
        slots.update(given_name=name.given, family_name=name.family)
        slots = {k: v for k, v in slots.items() if v is not None}
        whole = (name.given and name.family) or name.spelled  # a spelling is a whole answer, sure
        confidence = (HIGH if name.clean else MEDIUM) if whole else 0.45
        return _understood(Intent.PROVIDE_INFO, confidence, slots)
    if birth is None and not (cues.human or cues.repeat):
        birth, _ = parse_birth_date(t.num, ctx.now.date())
    if birth is not None:  # a date and no name: a date read back corrected ("No, July 25th, 1956")
        return _understood(Intent.PROVIDE_INFO, HIGH, {"birth_date": birth})
    if cues.human:
        return _understood(Intent.HUMAN, HIGH)
    if cues.repeat:
        return _understood(Intent.REPEAT, HIGH)
    if cues.task is not None:
        return _understood(cues.task, min(cues.task_confidence, 0.8))
    if cues.goodbye:
        return _understood(Intent.GOODBYE, HIGH)
    if cues.deny:
        return _understood(Intent.DENY, 0.7)
    if cues.affirm:
        return _understood(Intent.AFFIRM, GUESS)
    return _understood(Intent.UNKNOWN, NOTHING)


def _birth_turn(t: _Text, ctx: UnderstandingContext, cues: _Cues) -> Understood:
    birth, said = parse_birth_date(t.num, ctx.now.date())
    if birth is not None:
        return _understood(Intent.PROVIDE_INFO, HIGH, {"birth_date": birth})
    if cues.human:
        return _understood(Intent.HUMAN, HIGH)
    if cues.repeat:
        return _understood(Intent.REPEAT, HIGH)
    if said:
        return _understood(Intent.PROVIDE_INFO, 0.4)  # a date, but not a valid past one: ask again
    if cues.task is not None:
        return _understood(cues.task, min(cues.task_confidence, 0.8))
    if cues.goodbye:
        return _understood(Intent.GOODBYE, HIGH)
    if cues.deny:
        return _understood(Intent.DENY, 0.7)
    return _understood(Intent.UNKNOWN, NOTHING)


def _choose_turn(cues: _Cues, found: _Found, count: int) -> Understood | None:
    option = found.option
    if option.option is not None and option.negated:
        return _understood(Intent.DENY, MEDIUM, found.slots(include_option=False))
    if option.option is not None:
        return _understood(Intent.CHOOSE_OPTION, HIGH, {"option": option.option})
    if cues.deny and not (cues.task and found.when.found):
        return _understood(Intent.DENY, SURE if cues.deny == 2 else HIGH, found.slots(include_option=False))
    if option.attempted:
        return _understood(Intent.CHOOSE_OPTION, 0.45)
    if cues.affirm and cues.task is None:
        if count == 1:
            return _understood(Intent.AFFIRM, HIGH, {"option": 1})
        return _understood(Intent.AFFIRM, GUESS)
    return None


def _confirm_turn(t: _Text, cues: _Cues, found: _Found) -> Understood | None:
    if (cues.affirm and cues.deny) or (cues.affirm != 2 and _HESITATION.search(t.words)):
        return _understood(Intent.UNKNOWN, 0.3)
    if cues.nothing_else and not cues.affirm and cues.task is None:
        return _understood(Intent.NOTHING_ELSE, 0.85)
    if cues.affirm and cues.task in (None, Intent.BOOK):
        confidence = SURE if cues.affirm == 2 else 0.85
        return _understood(Intent.AFFIRM, _capped(confidence, found), found.slots(include_option=False))
    if cues.deny:
        confidence = SURE if cues.deny == 2 else 0.85
        return _understood(Intent.DENY, _capped(confidence, found), found.slots(include_option=False))
    return None


def _callback_turn(t: _Text, cues: _Cues, found: _Found) -> Understood | None:
    phone: dict[str, object] = {"phone": found.phone} if found.phone else {}
    if cues.deny == 2 or (cues.deny and not cues.affirm and not found.phone):
        return _understood(Intent.DENY, SURE if cues.deny == 2 else 0.85)
    if cues.affirm or _SAME_NUMBER.search(t.words):
        return _understood(Intent.AFFIRM, SURE if cues.affirm == 2 or found.phone else HIGH, phone)
    if found.phone:
        return _understood(Intent.PROVIDE_INFO, HIGH, phone)
    if cues.human:
        return _understood(Intent.AFFIRM, MEDIUM)
    return None


def _parse(utterance: str, ctx: UnderstandingContext) -> Understood:
    t = _prepare(utterance)
    if not t.words:
        return _understood(Intent.UNKNOWN, 0.0)
    exp = ctx.expecting
    if exp is Expectation.FULL_NAME:
        return _name_turn(t, ctx, _cues(t.words, exp, False))
    if exp is Expectation.BIRTH_DATE:
        return _birth_turn(t, ctx, _cues(t.words, exp, False))

    found = _find(t, ctx)
    cues = _cues(t.words, exp, found.wish)

    if exp is Expectation.CALLBACK:
        answer = _callback_turn(t, cues, found)
        if answer is not None:
            return answer
    if cues.human:
        return _understood(Intent.HUMAN, HIGH)
    if cues.repeat and cues.task is None and found.option.option is None:
        return _understood(Intent.REPEAT, HIGH)
    if exp in _CHOOSING:
        count = max(len(ctx.offered.starts), len(ctx.offered.practitioners))
        answer = _choose_turn(cues, found, count)
        if answer is not None:
            return answer
    if exp is Expectation.CONFIRM:
        answer = _confirm_turn(t, cues, found)
        if answer is not None:
            return answer
    if exp is Expectation.ANYTHING_ELSE and cues.task is None:
        if cues.goodbye:
            return _understood(Intent.GOODBYE, HIGH)
        if cues.nothing_else or cues.deny:
            return _understood(Intent.NOTHING_ELSE, SURE if cues.nothing_else or cues.deny == 2 else HIGH)
        if cues.affirm == 2:
            return _understood(Intent.AFFIRM, HIGH)

    slots = found.slots(include_option=False)
    if cues.task is not None:
        task = cues.task
        if (
            exp is Expectation.PREFERENCE
            and task in (Intent.BOOK, Intent.ASK_AVAILABILITY)
            and found.preferences
        ):
            task = Intent.PROVIDE_INFO  # mid-booking, "book me with Dr. Park on Friday" answers the question
        return _understood(task, _capped(cues.task_confidence, found), slots)
    if exp is Expectation.PREFERENCE and (found.preferences or found.unsure):
        return _understood(Intent.PROVIDE_INFO, _capped(HIGH, found), slots)
    if cues.goodbye:
        return _understood(Intent.GOODBYE, HIGH)
    if cues.nothing_else:
        return _understood(Intent.NOTHING_ELSE, 0.8)
    if exp is Expectation.TASK and (found.visit_type or found.practitioner.schedule_id):
        return _understood(Intent.BOOK, _capped(0.7, found), slots)  # "a physical with Dr. Park"
    if exp is Expectation.TASK and found.when.open_ended and not (cues.affirm or cues.deny):
        return _understood(Intent.BOOK, 0.55, slots)  # "as soon as possible": likely a booking, not sure
    if cues.affirm:
        return _understood(Intent.AFFIRM, 0.8 if cues.affirm == 2 else 0.6, slots)
    if cues.deny:
        return _understood(Intent.DENY, 0.8 if cues.deny == 2 else 0.6, slots)
    if found.preferences or found.unsure or found.phone:
        return _understood(
            Intent.PROVIDE_INFO,
            _capped(GUESS, found),
            slots,  # an answer to no question asked
        )
    if cues.repeat:
        return _understood(Intent.REPEAT, 0.7)
    return _understood(Intent.UNKNOWN, NOTHING)
