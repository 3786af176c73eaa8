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

import pytest

from fhir_adapters import PatientRef, Scheduling
from fhir_adapters.keypad import keypad_digits
from tests.canary import plant_canary
from tests.conftest import Sandbox
from tests.voice import caller_audio
from tests.voice.conftest import VoiceServer
from tests.voice.scripted import Exchange, Keys, Line, answer_by, converse
from tests.voice.twilio_caller import TwilioCaller
from voice_agent.pipeline.vocabulary import clinic_vocabulary

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

GIVEN, FAMILY = "Siobhan", "Okonkwo"


def spoken_date(born: date) -> str:
    return f"{born:%B} {born.day}, {born.year}."


def booking_script(
    given: str, family: str, born: date, *, keyed: bool = True
) -> Callable[[str], Line | None]:
    """The caller's side: names and date spoken; when asked, the surname (and, after a name the agent did
    not hear clearly, the first name) keyed one press per letter, or spelled aloud."""

    def spelling(name: str) -> Line:
        return Keys(keypad_digits(name) + "#") if keyed else ", ".join(name.upper())

    return answer_by(
        [
            (r"how can i help|help you today|scheduling assistant", "I'd like to book an appointment."),
            (r"couldn't verify|verify those", None),  # a refusal ends this caller's try
            (r"your first name\W|first name, letter", spelling(given)),
            (r"spell|key it|keypad|one press", spelling(family)),
            (r"first and last name|your name", f"It's {given} {family}."),
            (r"birth", spoken_date(born)),
            (r"preferred day|first available", "The first available time."),
            (r"which would you like|openings|would you like that", "The first one."),
            (r"shall i book", "Yes please."),
            (r"anything else", "No, that's all. Goodbye."),
            (r"bye\b|for calling the clinic\W*$", None),
        ]
    )


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


@pytest.mark.parametrize(
    ("voice", "keyed"),
    [
        pytest.param(partial(caller_audio.flite, voice="slt"), True, id="flite-slt-keypad"),
        pytest.param(partial(caller_audio.espeak, voice="en-us"), True, id="espeak-keypad"),
    ],
)
async def test_a_caller_with_an_uncommon_name_books_over_the_phone(
    sandbox: Sandbox,
    voice_server: VoiceServer,
    whisper: WhisperModel,
    scheduling: Scheduling,
    voice: Callable[[str], bytes],
    keyed: bool,
) -> None:
    patient = plant_canary(sandbox, GIVEN, FAMILY)
    born = date.fromisoformat(patient["CANARY_DOB"])
    ref = PatientRef(patient["id"])
    before_ends = turn_ends(voice_server)
    exchanges = await call(
        voice_server, whisper, scheduling, booking_script(GIVEN, FAMILY, born, keyed=keyed), voice
    )
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
    """Someone who knows a patient's birth date but not their name: the name does not match, the spelling
    (keyed, so nothing is misheard) does not either, and the agent says only that it couldn't verify."""
    patient = plant_canary(sandbox, GIVEN, FAMILY)
    born = date.fromisoformat(patient["CANARY_DOB"])
    script = booking_script("Margaret", "Whitfield", born)
    exchanges = await call(
        voice_server, whisper, scheduling, script, partial(caller_audio.flite, voice="slt")
    )
    heard = " | ".join(e.agent for e in exchanges)
    assert "couldn't verify" in exchanges[-1].agent.lower(), heard
    assert not any("verified" in e.agent.lower() and "couldn't" not in e.agent.lower() for e in exchanges)
    assert await scheduling.upcoming_appointments(PatientRef(patient["id"])) == []
    await asyncio.sleep(0)
