"""Simulated callers from a seed: goals crossed with phrasings, fillers, orders, name and date formats and
mid-call changes of mind. Each call says what FHIR must show afterwards, so a run is scored on outcomes,
not on the words the agent chose.

The phrasings here were written from how people book by phone, not from the rules' patterns; a phrasing
the agent fails is a finding, not a reason to drop the phrasing. ``tests/conversations/test_generated.py``
runs a fixed seed's calls in the suite; ``bench/conversations.py --callers 500`` runs many more.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Literal

from harness.simulator import Persona
from voice_agent.dialogue import speech, templates
from voice_agent.sandbox.clinic import SyntheticPatient

__all__ = ["GeneratedCall", "Kind", "generate", "outcome_ok"]

Kind = Literal["book", "cancel", "reschedule", "list", "cancel+book"]

#: A check on the new appointment's start (clinic zone) given the agent's today.
When = Callable[[datetime, date], bool]

#: How the agent offers the nearest time when nothing matched (templates.NO_SLOTS_NEAREST).
_NEAREST = "The nearest I have is"
assert _NEAREST in templates.NO_SLOTS_NEAREST

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")


def _week(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _any(start: datetime, today: date) -> bool:
    return True


def on_weekday(weekday: int) -> When:
    """A slot on that weekday (0 is Monday)."""
    return lambda s, t: s.weekday() == weekday


@dataclass(frozen=True)
class Wish:
    """A way of saying when, and what FHIR must show if the agent honoured it."""

    words: str
    check: When = _any


def _wishes(today: date, rng: random.Random) -> list[Wish]:
    weekday = rng.randrange(5)
    name = WEEKDAYS[weekday]
    ahead = today + timedelta(days=rng.randint(5, 16))
    while ahead.weekday() > 4:
        ahead += timedelta(days=1)
    hour = rng.choice((2, 3))
    return [
        Wish("the first available", lambda s, t: (s.date() - t).days <= 7),
        Wish("as soon as possible", lambda s, t: (s.date() - t).days <= 7),
        Wish("whatever's soonest is fine", lambda s, t: (s.date() - t).days <= 7),
        Wish("next week", lambda s, t: _week(s.date()) == _week(t) + timedelta(days=7)),
        Wish("sometime next week I guess", lambda s, t: _week(s.date()) == _week(t) + timedelta(days=7)),
        Wish("the week after next", lambda s, t: _week(s.date()) == _week(t) + timedelta(days=14)),
        Wish(f"on {name}", lambda s, t: s.weekday() == weekday),
        Wish(f"next {name}", lambda s, t: s.weekday() == weekday and s.date() > t),
        Wish(f"{name} morning", lambda s, t: s.weekday() == weekday and s.time() < time(12)),
        Wish("in the morning", lambda s, t: s.time() < time(12)),
        Wish("first thing in the morning", lambda s, t: s.time() <= time(10)),
        Wish("around lunchtime", lambda s, t: time(11, 30) <= s.time() <= time(13, 30)),
        Wish("in the afternoon", lambda s, t: time(12) <= s.time() < time(17)),
        Wish(f"any time after {hour}", lambda s, t: s.time() >= time(12 + hour)),
        Wish(f"after {hour} PM", lambda s, t: s.time() >= time(12 + hour)),
        Wish("before 10", lambda s, t: s.time() < time(10)),
        Wish(
            f"on {ahead:%B} {speech.ordinal(ahead.day)}",
            lambda s, t: s.date() == ahead,
        ),
        Wish(
            f"{name}, no wait, {WEEKDAYS[(weekday + 2) % 5]}",
            lambda s, t: s.weekday() == (weekday + 2) % 5,
        ),
        Wish("with Dr. Park", lambda s, t: True),
        Wish("with doctor Okafor in the afternoon", lambda s, t: time(12) <= s.time() < time(17)),
    ]


BOOK_OPENINGS = (
    "I'd like to book an appointment",
    "hi, I need to make an appointment",
    "can I get an appointment please",
    "I was hoping to come in and see someone",
    "could you schedule me for a visit",
    "yeah hi, I wanna book a time to come in",
    "I'd like to set up an appointment",
    "I need to see a doctor",
    "hello, I'm calling to make an appointment",
    "do you have any openings",
    "I need a check up",
    "I'd like to come in for a follow up",
)
CANCEL_OPENINGS = (
    "I need to cancel my appointment",
    "I can't make my appointment, can you cancel it",
    "I'd like to cancel",
    "please cancel my visit",
    "hi, I have to call off my appointment",
)
RESCHEDULE_OPENINGS = (
    "I need to move my appointment",
    "can I reschedule",
    "I need to change my appointment time",
    "could I switch my appointment to another day",
    "hi, I need to reschedule my visit",
)
LIST_OPENINGS = (
    "when is my next appointment",
    "do I have any appointments coming up",
    "can you tell me when my appointment is",
    "I forgot when my appointment is",
    "could you check my appointments",
)
FILLERS = ("um, ", "uh, ", "so, ", "like, ", "yeah, ", "okay so ", "hi, um, ")
NAME_STYLES = ("plain", "intro", "this-is", "lower", "last-first", "spelled", "ascii")
DATE_STYLES = ("long", "numeric", "ordinal", "sentence", "keypad")


@dataclass
class GeneratedCall:
    kind: Kind
    patient: SyntheticPatient
    persona: Persona
    #: What the new (or moved-to) appointment's start must satisfy.
    when: When = field(default=_any)
    wish: str = ""

    def describe(self) -> str:
        p = self.persona
        return f"{self.kind} [{p.name_style}/{p.date_style}] {p.opening!r} / {self.wish!r}"


def _filled(rng: random.Random, words: str) -> str:
    return f"{rng.choice(FILLERS)}{words}" if rng.random() < 0.35 else words


def generate(
    seed: int,
    count: int,
    *,
    patients: list[SyntheticPatient],
    holders: Callable[[], list[SyntheticPatient]],
    today: date,
) -> Iterator[GeneratedCall]:
    """``count`` calls from ``seed``, made one at a time as they are asked for. ``patients`` may book;
    ``holders()`` (asked per call, since the calls before change who holds an appointment) gives those
    who can cancel, move or list one."""
    rng = random.Random(seed)
    for _ in range(count):
        kind: Kind = rng.choices(
            ("book", "cancel", "reschedule", "list", "cancel+book"), weights=(55, 12, 15, 10, 8)
        )[0]
        holding = holders()
        if kind != "book" and not holding:
            kind = "book"
        patient = rng.choice(patients if kind == "book" else holding)
        wish = rng.choice(_wishes(today, rng))
        persona = Persona(
            given=patient.given,
            family=patient.family,
            born=patient.birth_date,
            opening="",
            pick=rng.choice((1, 1, 2, 3)),
            name_style=rng.choice(NAME_STYLES),
            date_style=rng.choice(DATE_STYLES),
        )
        if kind == "book":
            opening = rng.choice(BOOK_OPENINGS)
            if rng.random() < 0.25:  # the wish in the opening line: one question fewer
                opening, persona.preference = f"{opening} {wish.words}", wish.words
            persona.preference = wish.words
        elif kind == "cancel":
            opening = rng.choice(CANCEL_OPENINGS)
        elif kind == "reschedule":
            opening = rng.choice(RESCHEDULE_OPENINGS)
            persona.preference = wish.words
        elif kind == "list":
            opening = rng.choice(LIST_OPENINGS)
        else:
            opening = rng.choice(CANCEL_OPENINGS)
            persona.then = _filled(rng, "yes, actually I'd like to book a new one")
            persona.preference = wish.words
        persona.opening = _filled(rng, opening)
        persona.preference = _filled(rng, persona.preference)
        if kind in ("book", "reschedule") and rng.random() < 0.12:
            # a change of mind at the read-back: another day, which the new booking must honour
            other = rng.randrange(5)
            persona.overrides.append(("confirm", f"actually, can we do {WEEKDAYS[other]} instead"))
            wish = Wish(f"{wish.words} -> {WEEKDAYS[other]}", on_weekday(other))
        yield GeneratedCall(kind, patient, persona, wish.check, wish.words)


def outcome_ok(
    call: GeneratedCall,
    before: dict[str, dict[str, str]],
    after: dict[str, dict[str, str]],
    *,
    zone: object,
    today: date,
    agent_said: list[str],
) -> bool:
    """Whether FHIR shows what the caller set out to do. Where nothing matched the wish and the agent
    offered the nearest time instead, the caller took it knowingly: the booking need not match the wish."""
    if any(_NEAREST in line for line in agent_said):
        call = replace(call, when=_any)
    added = [after[i] for i in set(after) - set(before)]
    removed = set(before) - set(after)
    if call.kind == "list":
        return after == before
    if call.kind == "cancel":
        return not added and len(removed) == 1
    if call.kind == "book":
        return len(added) == 1 and not removed and _honoured(call, added[0], zone, today)
    # reschedule, cancel+book: one gone, one new
    return len(added) == 1 and len(removed) == 1 and _honoured(call, added[0], zone, today)


def _honoured(call: GeneratedCall, appointment: dict[str, str], zone: object, today: date) -> bool:
    start = datetime.fromisoformat(appointment["start"]).astimezone(zone)  # type: ignore[arg-type]
    return call.when(start, today)
