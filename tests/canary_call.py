"""A call that carries canary PHI through every code path the product has, run as its own process.

Started by tests/test_canary_phi.py with the canary in CANARY_* variables and the product's settings in
VOICE_AGENT_* variables (DEBUG logging on). It starts the process the way the CLI does (hardening, the
one logging set-up, the audit checkpoints ``serve`` writes), then drives sessions, the gateway and every
scheduling operation, success and failure paths, logs PHI on purpose the ways careless code would, lets
a session time out, and feeds the staff console's stores the canary where a person might type it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyotp
from loguru import logger
from sqlalchemy import text

from fhir_adapters import FhirInvalidResponse, NotThisPatientsAppointment, SlotUnavailable
from harness.faults import FaultyTransport, matches, real_transport
from harness.simulator import spell
from voice_agent.console import build_console, totp
from voice_agent.dialogue.factory import conversations
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.ingress.text import run_call
from voice_agent.privacy import caller_speech_logger, configure_logging, harden_process, remember_name
from voice_agent.runtime import Runtime, runtime
from voice_agent.settings import Settings

GIVEN, FAMILY = os.environ["CANARY_GIVEN"], os.environ["CANARY_FAMILY"]
BORN, PHONE = date.fromisoformat(os.environ["CANARY_DOB"]), os.environ["CANARY_PHONE"]
MISHEARD = FAMILY[:-1] + ("e" if FAMILY[-1] != "e" else "a")
SPELLED = spell(FAMILY)  # as a caller spells it when asked
UTTERANCE = f"Hi, this is {GIVEN} {FAMILY}, born {BORN:%B %d, %Y}, you can reach me at {PHONE}"


async def call(settings: Settings) -> None:
    log = logging.getLogger("voice_agent.canary")
    bad_patient = {"resourceType": "Patient", "id": "x", "name": f"{GIVEN} {FAMILY}", "birthDate": str(BORN),
                   "telecom": PHONE}  # fmt: skip
    garbage = json.dumps(
        {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": bad_patient}]}
    ).encode()
    wire = FaultyTransport(real_transport(settings), body_override=garbage)
    async with runtime(settings, transport=wire, checkpoints=True) as agent:
        scheduling = agent.scheduling
        async with agent.sessions.call(caller_number=PHONE) as session:
            session.heard.append(UTTERANCE)
            remember_name(f"{GIVEN} {FAMILY}")
            # careless logging, every way a developer might write it
            log.debug("caller said: %s", UTTERANCE)
            log.info(f"verifying {GIVEN} {FAMILY} born {BORN.isoformat()} from {PHONE}")
            logger.debug("Transcription: [{}]", UTTERANCE)
            logger.info(f"caller {FAMILY} ({BORN:%m/%d/%Y})")
            caller_speech_logger("voice_agent.dialogue").info("heard %s", UTTERANCE)

            (patient,) = await scheduling.find_patient(given=GIVEN, family=FAMILY, birth_date=BORN)
            session.patient = patient
            assert await scheduling.phone_on_record(patient, PHONE)
            await scheduling.upcoming_appointments(patient)
            first, second = (await scheduling.find_free_slots(limit=2))[:2]
            booked = await scheduling.book(patient, first.slot_id)
            session.found["booked"] = booked
            try:
                await scheduling.book(patient, first.slot_id)
            except SlotUnavailable:
                log.warning("slot taken for %s", FAMILY, exc_info=True)
            moved = await scheduling.reschedule(patient, booked.appointment_id, second.slot_id)
            await scheduling.cancel(patient, moved.appointment_id)
            assert (
                await scheduling.find_patient(given=GIVEN, family=FAMILY, birth_date=BORN + timedelta(days=1))
                == []
            )
            try:
                await scheduling.cancel(patient, "appt-does-not-exist")
            except NotThisPatientsAppointment:
                log.exception("cancel refused for %s %s", GIVEN, FAMILY)
            wire.inject(matches("POST", "/Patient/_search"), "garbage")
            try:
                await scheduling.find_patient(given=GIVEN, family=FAMILY, birth_date=BORN)
            except FhirInvalidResponse:
                log.exception("verification failed for %s born %s", FAMILY, BORN)
            try:
                raise ValueError(f"unexpected caller {GIVEN} {FAMILY} {BORN} {PHONE}")
            except ValueError:
                log.exception("call handler crashed")
                logger.exception("call handler crashed (loguru)")
            worker = threading.Thread(target=_crash_in_thread)
            worker.start()
            worker.join()

        # the text channel: the caller says the canary's name, birth date and number; the agent books and,
        # when the caller asks for a person, hands off to staff with the canary's callback number
        await text_channel_call(agent)

        # the console's own tables (throttle, enrolment links, sessions, recovery codes, row tags) and the
        # tamper alerts, written with the canary at hand
        await asyncio.to_thread(staff_console, agent)
        assert any(e.tampered for e in await agent.escalations.queue())

        # a second call that goes quiet and is logged off by the idle timeout
        idle = await agent.sessions.start(caller_number=PHONE)
        idle.heard.append(UTTERANCE)
        await asyncio.sleep(settings.session_idle_timeout_seconds * 3)
        assert idle.ended == "timeout", idle.ended


async def text_channel_call(agent: Runtime) -> None:
    turns = iter(
        [
            f"hi, this is {GIVEN} {FAMILY}, I'd like to book an appointment",
            f"{GIVEN} {MISHEARD}",  # heard one letter wrong: the agent asks for the spelling
            f"{BORN:%B} {BORN.day} {BORN.year}",
            SPELLED,
            "first available",
            "the second one",
            "yes please",
            "how many ibuprofen can I take with my medication",
            "yes please",
            PHONE,
        ]
    )

    async def lines() -> AsyncIterator[str]:
        for turn in turns:
            yield turn

    spoken: list[str] = []
    ended = await run_call(agent, conversations(agent), RulesUnderstanding(), lines(), spoken.append)
    assert ended == "escalated", spoken
    assert any(line.startswith("You're booked") for line in spoken), spoken
    for line in spoken:
        print(line, flush=True)  # what the caller heard goes to stdout, which the test scans too


def staff_console(agent: Runtime) -> None:
    """The patient's name typed as a user name and the callback number as a password (refused, each
    counted against the address); an account enrolled through its link with the canary in its password and
    signed in with a recovery code; then rows changed in SQL without the keys: the canary's escalation
    marked resolved and a recovery code added, each raising a record-tampered alert."""
    console, outside, desk = build_console(agent), "198.51.100.7", "10.1.2.3"
    for name in (f"{GIVEN} {FAMILY}", FAMILY.lower()):
        assert not console.logins.password(name, PHONE, outside).ok
    _user, link = console.staff.invite("desk", "front-desk")
    secret = console.staff.enrolment_secret("desk")
    password = f"{FAMILY} {PHONE}"  # careless, and kept only as an argon2id hash
    enrolled, codes = console.staff.complete_enrolment(link.token, password, pyotp.TOTP(secret).now())
    assert enrolled.ok
    assert console.logins.password("desk", password, desk).ok
    assert console.logins.code("desk", codes[0], desk).ok  # the desk's address is now proven
    console.auth.sessions.open("desk", "full")
    forged = totp.new_recovery_codes()[0]
    with agent.trail.engine.begin() as conn:
        conn.execute(text("UPDATE escalations SET status = 'resolved'"))
        conn.execute(
            text("INSERT INTO staff_recovery_codes (username, digest) VALUES ('desk', :digest)"),
            {"digest": totp.recovery_digest(forged)},
        )
    assert not console.logins.code("desk", forged, desk).ok


def _crash_in_thread() -> None:
    raise RuntimeError(f"uncaught in a worker thread: {GIVEN} {FAMILY} {PHONE}")


def main() -> None:
    settings = Settings()
    harden_process()
    configure_logging(settings)
    asyncio.run(call(settings))
    print("CANARY-RUN-OK", flush=True)


if __name__ == "__main__":
    main()
