"""Callers the agent was not tuned on, end to end over the telephone path (Twilio's media stream, 8 kHz
μ-law): voices from Debian's flite and espeak-ng, not the agent's own piper, with names Whisper tiny.en
mishears ("Siobhan Okonkwo" came back as "It's held on to Conbo"). The date of birth comes through; the
name does not, so verification goes by the spelling, spoken or keyed.

Each call is checked where it matters: the booking in FHIR (exactly one, for the planted patient), the
audit trail (verified or not), and the turns, which must not have waited out ``turn_max_pause_seconds``
where the caller's words were a whole answer (the worker's own count of what ended each turn).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date
from functools import partial
from typing import TYPE_CHECKING

from fhir_adapters import PatientRef, Scheduling
from fhir_adapters.keypad import keypad_digits
from harness import caller_audio
from harness.canary import plant_canary
from harness.sandbox import Sandbox
from harness.scripted import Exchange, Keys, Line, answer_by, converse, correcting_read_back
from harness.twilio_caller import TwilioCaller
from harness.voice_server import VoiceServer
from voice_agent.pipeline.vocabulary import clinic_vocabulary

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

GIVEN, FAMILY = "Siobhan", "Okonkwo"


def spoken_date(born: date) -> str:
    return f"{born:%B} {born.day}, {born.year}."


def booking_script(
    given: str, family: str, born: date, *, keyed: bool = True, keyed_birth_date: bool = False
) -> Callable[[str], Line | None]:
    """The caller's side: names and date spoken; when asked, the surname (and, after a name the agent did
    not hear clearly, the first name) keyed one press per letter, or spelled aloud."""

    def spelling(name: str) -> Line:
        return Keys(keypad_digits(name) + "#") if keyed else ", ".join(name.upper())

    script = answer_by(
        [
            (r"how can i help|help you today|scheduling assistant", "I'd like to book an appointment."),
            (r"couldn't verify|verify those", None),  # a refusal ends this caller's try
            (
                r"birth",
                Keys(born.strftime("%m%d%Y")) if keyed_birth_date else spoken_date(born),
            ),  # before the spellings: "...or key it in as month, day..."
            (r"your first name\W|first name, letter", spelling(given)),
            (r"spell|key it|keypad|one press", spelling(family)),
            (r"first and last name|your name", f"It's {given} {family}."),
            (r"preferred day|first available", "The first available time."),
            (r"which would you like|openings|would you like that", "The first one."),
            (r"shall i book", "Yes please."),
            (r"anything else", "No, that's all. Goodbye."),
            (r"bye\b|for calling the clinic\W*$", None),
        ]
    )
    return correcting_read_back(script, born, spoken_date(born))


async def call(
    server: VoiceServer,
    whisper: WhisperModel,
    scheduling: Scheduling,
    script: Callable[[str], Line | None],
    voice: Callable[[str], bytes],
) -> list[Exchange]:
    vocabulary = await clinic_vocabulary(scheduling)
    async with TwilioCaller(f"{server.ws_url}/telephony/twilio", server.ssl_context()) as caller:
        return await converse(caller, whisper, script, voice=voice, vocabulary=vocabulary, max_turns=14)


def turn_ends(server: VoiceServer) -> dict[str, float]:
    return {by: server.metric("voice_agent_turn_ends_total", by=by) for by in ("answer", "max_pause")}


async def test_a_flite_caller_with_an_uncommon_name_books_over_the_phone(
    sandbox: Sandbox, voice_server: VoiceServer, whisper: WhisperModel, scheduling: Scheduling
) -> None:
    """flite's slt voice says "It's Siobhan Okonkwo"; tiny.en hears "It's shout-on to Conville". The
    date comes through, the surname and then the first name are keyed, and the booking is made.
    (Spelled aloud instead, flite's and espeak-ng's letters came back too garbled for tiny.en to find
    the record: "S, I, O, B, H, A, N" as "Yeah. I, O, V, H."; text-level tests in
    tests/conversations/test_misheard_names.py cover the spoken spelling with the slips it does make.)"""
    voice = partial(caller_audio.flite, voice="slt")
    patient = plant_canary(sandbox, GIVEN, FAMILY)
    born = date.fromisoformat(patient["CANARY_DOB"])
    ref = PatientRef(patient["id"])
    before_ends = turn_ends(voice_server)
    exchanges = await call(voice_server, whisper, scheduling, booking_script(GIVEN, FAMILY, born), voice)
    heard = " | ".join(e.agent for e in exchanges)
    assert not any("couldn't verify" in e.agent.lower() for e in exchanges), heard
    booked = await scheduling.upcoming_appointments(ref)
    assert len(booked) == 1, heard
    ends = turn_ends(voice_server)
    # Every line this caller says is a whole answer but "The first available time." (a preference,
    # open-ended by design): no other turn may wait out the maximum pause.
    assert ends["max_pause"] - before_ends["max_pause"] <= 1, (ends, before_ends, heard)
    # At most two extra turns for the misheard name: the surname's spelling, and the first name's.
    asked = [e for e in exchanges if "spell" in e.agent.lower() or "key it" in e.agent.lower()]
    assert len(asked) <= 2, heard


async def test_the_right_birth_date_with_another_persons_name_is_refused(
    sandbox: Sandbox, voice_server: VoiceServer, whisper: WhisperModel, scheduling: Scheduling
) -> None:
    """Someone who knows a patient's birth date but not their name (an espeak-ng voice): the name does not
    match, the spelling (keyed, so nothing is misheard) does not either, and the agent says only that it
    couldn't verify."""
    patient = plant_canary(sandbox, GIVEN, FAMILY)
    born = date.fromisoformat(patient["CANARY_DOB"])
    # the date keyed, as a caller who knows it would: espeak-ng's spoken dates are often not heard
    script = booking_script("Margaret", "Whitfield", born, keyed_birth_date=True)
    exchanges = await call(voice_server, whisper, scheduling, script, caller_audio.espeak)
    heard = " | ".join(e.agent for e in exchanges)
    assert "couldn't verify" in exchanges[-1].agent.lower(), heard
    assert not any("verified" in e.agent.lower() and "couldn't" not in e.agent.lower() for e in exchanges)
    assert await scheduling.upcoming_appointments(PatientRef(patient["id"])) == []
    await asyncio.sleep(0)
