"""Booking, cancelling, rescheduling, listing and availability, by every hard-case patient, each checked
against FHIR afterwards, and each checked for never naming another patient."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import pytest

from fhir_adapters import PatientRef, Scheduling
from harness.conversations import Converse, Transcript, booked, slot_status, status_of
from harness.sandbox import Sandbox
from harness.simulator import Persona
from voice_agent.sandbox.clinic import SyntheticPatient


def persona(patient: SyntheticPatient, opening: str, **options: Any) -> Persona:
    return Persona(
        given=patient.given, family=patient.family, born=patient.birth_date, opening=opening, **options
    )


def confirmed_start(transcript: Transcript) -> str:
    line = next(line for line in reversed(transcript.agent) if line.startswith("You're booked"))
    found = re.search(r"at (\d{1,2}(?::\d\d)? [AP]M|noon)", line)
    assert found, line
    return found.group(1)


BOOKINGS = [
    (
        "hyphenated",
        "I'd like to book an appointment",
        "next Thursday afternoon with Dr. Park",
        2,
        "plain",
        "long",
    ),
    ("apostrophe", "can I make an appointment please", "any time after 4", 1, "intro", "ordinal"),
    ("accented", "i need to schedule a visit", "first available", 1, "ascii", "numeric"),
    ("leap-day", "book me in with doctor okafor", "next week in the morning", 3, "this-is", "sentence"),
    ("multi-given", "I want to see Dr. Hernandez", "tomorrow afternoon", 1, "plain", "keypad"),
    ("short-name", "I'd like an appointment for a vaccination", "first available", 2, "lower", "long"),
    ("no-appointments", "I need an annual physical", "with Dr. Park in the morning", 1, "plain", "ordinal"),
    ("with-appointments", "can I book a follow up", "next week", 2, "intro", "long"),
]


@pytest.mark.parametrize(("tag", "opening", "preference", "pick", "name_style", "date_style"), BOOKINGS)
async def test_booking(
    sandbox: Sandbox,
    converse: Converse,
    tag: str,
    opening: str,
    preference: str,
    pick: int,
    name_style: str,
    date_style: str,
) -> None:
    caller = sandbox.clinic.patient(tag)
    before = booked(sandbox, caller.id)
    transcript = await converse(
        persona(
            caller, opening, preference=preference, pick=pick, name_style=name_style, date_style=date_style
        )
    )
    assert transcript.end == "goodbye", transcript.text()
    after = booked(sandbox, caller.id)
    new = set(after) - set(before)
    assert len(new) == 1, transcript.text()
    appointment = after[new.pop()]
    start = datetime.fromisoformat(appointment["start"]).astimezone(sandbox.settings.zone)
    assert start > sandbox.clock()
    spoken = confirmed_start(transcript)
    assert spoken in (start.strftime("%-I %p"), start.strftime("%-I:%M %p"), "noon"), transcript.text()
    slot_id = appointment["slot"][0]["reference"].split("/")[1]
    assert slot_status(sandbox, slot_id) == "busy"


async def test_booking_respects_the_stated_preference(sandbox: Sandbox, converse: Converse) -> None:
    caller = sandbox.clinic.patients_tagged("pool")[0]
    before = booked(sandbox, caller.id)
    transcript = await converse(persona(caller, "I'd like to book with doctor O'Connell in the afternoon"))
    assert transcript.end == "goodbye", transcript.text()
    (new,) = set(booked(sandbox, caller.id)) - set(before)
    appointment = booked(sandbox, caller.id)[new]
    start = datetime.fromisoformat(appointment["start"]).astimezone(sandbox.settings.zone)
    assert 12 <= start.hour < 17
    assert any("O'Connell" in (p["actor"].get("display") or "") for p in appointment["participant"])


@pytest.mark.parametrize("pick", [1, 2])
async def test_cancel(sandbox: Sandbox, converse: Converse, pick: int) -> None:
    caller = sandbox.clinic.patients_tagged("with-appointments")[pick]
    before = booked(sandbox, caller.id)
    upcoming = sorted(
        (a for a in before.values() if datetime.fromisoformat(a["start"]) > sandbox.clock()),
        key=lambda a: a["start"],
    )
    assert upcoming
    transcript = await converse(
        persona(caller, "I need to cancel my appointment", pick=pick if len(upcoming) > 1 else 1)
    )
    assert transcript.end == "goodbye", transcript.text()
    after = booked(sandbox, caller.id)
    gone = set(before) - set(after)
    assert len(gone) == 1, transcript.text()
    expected = upcoming[(pick if len(upcoming) > 1 else 1) - 1]["id"]
    assert gone == {expected}
    assert status_of(sandbox, expected) == "cancelled"
    slot_id = before[expected]["slot"][0]["reference"].split("/")[1]
    assert slot_status(sandbox, slot_id) == "free"
    assert any(line.startswith("It's cancelled") for line in transcript.agent)


async def test_reschedule(sandbox: Sandbox, converse: Converse) -> None:
    caller = sandbox.clinic.patients_tagged("with-appointments")[3]
    before = booked(sandbox, caller.id)
    transcript = await converse(
        persona(caller, "I need to move my appointment", preference="next week in the afternoon", pick=2)
    )
    assert transcript.end == "goodbye", transcript.text()
    after = booked(sandbox, caller.id)
    assert len(after) == len(before), transcript.text()
    (old,) = set(before) - set(after)
    (new,) = set(after) - set(before)
    assert status_of(sandbox, old) == "cancelled"
    start = datetime.fromisoformat(after[new]["start"]).astimezone(sandbox.settings.zone)
    assert 12 <= start.hour < 17
    assert any(line.startswith("Done.") for line in transcript.agent), transcript.text()


def upcoming_in_order(sandbox: Sandbox, patient_id: str) -> list[dict[str, Any]]:
    """Booked and still to come, soonest first: the order the agent reads them in."""
    now = sandbox.clock()
    return sorted(
        (a for a in booked(sandbox, patient_id).values() if datetime.fromisoformat(a["start"]) > now),
        key=lambda a: (datetime.fromisoformat(a["start"]), a["id"]),
    )


@pytest.mark.parametrize(("which", "at_least"), [(4, 0), (5, 4)], ids=["as-seeded", "more-than-three"])
async def test_list_my_appointments(
    sandbox: Sandbox, converse: Converse, scheduling: Scheduling, which: int, at_least: int
) -> None:
    """The soonest three are read out by doctor; any beyond them are counted, in a grammatical sentence."""
    caller = sandbox.clinic.patients_tagged("with-appointments")[which]
    while len(upcoming_in_order(sandbox, caller.id)) < at_least:  # booked the way the agent books
        await scheduling.book(PatientRef(caller.id), (await scheduling.find_free_slots(limit=1))[0].slot_id)
    current = booked(sandbox, caller.id)
    upcoming = upcoming_in_order(sandbox, caller.id)
    transcript = await converse(persona(caller, "when is my next appointment"))
    assert transcript.end == "goodbye", transcript.text()
    listing = next(line for line in transcript.agent if "upcoming appointment" in line)
    assert f"{len(upcoming)} upcoming" in listing or (len(upcoming) == 1 and "one upcoming" in listing)
    for appointment in upcoming[:3]:
        doctor = next(p["actor"]["display"] for p in appointment["participant"] if "display" in p["actor"])
        assert doctor in listing, transcript.text()
    more = len(upcoming) - 3
    if more == 1:
        assert "There is one more after that." in listing, listing
    elif more > 1:
        assert f"There are {more} more after that." in listing, listing
    assert booked(sandbox, caller.id) == current  # listing changes nothing


async def test_list_when_there_are_none(sandbox: Sandbox, converse: Converse) -> None:
    caller = sandbox.clinic.patients_tagged("no-appointments")[-1]
    assert not booked(sandbox, caller.id)
    transcript = await converse(persona(caller, "do I have anything booked"))
    assert any("don't see any upcoming appointments" in line for line in transcript.agent), transcript.text()


async def test_past_appointments_are_not_offered_for_cancellation(
    sandbox: Sandbox, converse: Converse
) -> None:
    caller = sandbox.clinic.patient("past-appointment")
    before = booked(sandbox, caller.id)
    transcript = await converse(persona(caller, "cancel my appointment"))
    assert booked(sandbox, caller.id) == before or len(booked(sandbox, caller.id)) == len(before) - 1
    past = [a for a in before.values() if datetime.fromisoformat(a["start"]) < sandbox.clock()]
    for appointment in past:
        assert status_of(sandbox, appointment["id"]) == "booked", transcript.text()


async def test_availability_then_book(sandbox: Sandbox, converse: Converse) -> None:
    caller = sandbox.clinic.patients_tagged("pool")[1]
    before = booked(sandbox, caller.id)
    transcript = await converse(persona(caller, "what do you have available on Friday", preference="Friday"))
    assert transcript.end == "goodbye", transcript.text()
    (new,) = set(booked(sandbox, caller.id)) - set(before)
    start = datetime.fromisoformat(booked(sandbox, caller.id)[new]["start"]).astimezone(sandbox.settings.zone)
    assert start.weekday() == 4
