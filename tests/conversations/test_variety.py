"""More callers, more ways of saying things: every booking lands in FHIR as stated, nothing else moves."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from harness.conversations import Converse, booked
from harness.sandbox import Sandbox
from tests.conversations.test_tasks import persona


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


# (pool index, opening, preference, check on the booked start in the clinic's zone and the agent's today)
PHRASINGS = [
    (
        8,
        "hi, I'd like to schedule an appointment",
        "any time after 3",
        lambda s, today: s.time() >= time(15, 0),
    ),
    (9, "I need to see a doctor", "morning", lambda s, today: s.time() < time(12, 0)),
    (10, "can you book me in", "with doctor park", lambda s, today: True),
    (11, "I'd like to make an appointment with Dr. Okafor", "first available", lambda s, today: True),
    (12, "book a telehealth visit", "first available", lambda s, today: True),
    (
        13,
        "um, yeah, I need an appointment",
        "next week",
        lambda s, today: _monday(s.date()) == _monday(today) + timedelta(days=7),
    ),
    (14, "I want a flu shot", "first available", lambda s, today: True),
    (
        15,
        "new patient visit please",
        "in the afternoon",
        lambda s, today: time(12, 0) <= s.time() < time(17, 0),
    ),
    (16, "schedule a checkup", "before 10", lambda s, today: s.time() < time(10, 0)),
    (17, "I'd like to come in", "Friday", lambda s, today: s.weekday() == 4),
    (18, "appointment please", "with Dr. Hernandez in the morning", lambda s, today: s.time() < time(12, 0)),
    (19, "I'd like to book a follow-up visit", "late afternoon", lambda s, today: s.time() >= time(15, 0)),
]


@pytest.mark.parametrize(("index", "opening", "preference", "check"), PHRASINGS)
async def test_phrasings(
    sandbox: Sandbox, converse: Converse, index: int, opening: str, preference: str, check: object
) -> None:
    caller = sandbox.clinic.patients_tagged("pool")[index]
    before = booked(sandbox, caller.id)
    transcript = await converse(persona(caller, opening, preference=preference, pick=1 + index % 3))
    assert transcript.end == "goodbye", transcript.text()
    after = booked(sandbox, caller.id)
    (new,) = set(after) - set(before)
    start = datetime.fromisoformat(after[new]["start"]).astimezone(sandbox.settings.zone)
    assert callable(check) and check(start, sandbox.clock().date()), transcript.text()


@pytest.mark.parametrize("date_style", ["long", "numeric", "ordinal", "keypad", "sentence"])
async def test_every_way_of_saying_a_birth_date(
    sandbox: Sandbox, converse: Converse, date_style: str
) -> None:
    caller = sandbox.clinic.patients_tagged("pool")[
        20 + ["long", "numeric", "ordinal", "keypad", "sentence"].index(date_style)
    ]
    transcript = await converse(persona(caller, "do I have any appointments", date_style=date_style))
    assert any("verified" in line for line in transcript.agent), transcript.text()


async def test_the_caller_can_ask_to_hear_it_again(sandbox: Sandbox, converse: Converse) -> None:
    caller = sandbox.clinic.patient("short-name")
    transcript = await converse(
        persona(caller, "book an appointment", overrides=[("birth_date", "sorry, can you repeat that?")])
    )
    asked_twice = [line for line in transcript.agent if "date of birth" in line]
    assert len(asked_twice) >= 2 and asked_twice[0] == asked_twice[1], transcript.text()


async def test_goodbye_midway_changes_nothing(sandbox: Sandbox, converse: Converse) -> None:
    caller = sandbox.clinic.patients_tagged("with-appointments")[2]
    before = booked(sandbox, caller.id)
    transcript = await converse(
        persona(caller, "cancel my appointment", overrides=[("confirm", "actually, never mind, goodbye")])
    )
    assert transcript.end == "goodbye"
    assert booked(sandbox, caller.id) == before


async def test_a_caller_who_leads_with_their_name(sandbox: Sandbox, converse: Converse) -> None:
    caller = sandbox.clinic.patient("leap-day")
    transcript = await converse(
        persona(
            caller,
            f"hi, this is {caller.given} {caller.family}",
            overrides=[("task", "when is my next appointment")],
        )
    )
    assert any("verified" in line for line in transcript.agent), transcript.text()
