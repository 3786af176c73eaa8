"""Names heard wrong over the phone: the date of birth and a spelled surname find the caller, and a wrong
name with the right date still never verifies. The misheard names here are the kind tiny.en writes for
these names through 8 kHz audio; each conversation runs on the real sandbox, in rules and hybrid modes.
A surname may be keyed instead of spelled (one press per letter): those calls run with the rules."""

from __future__ import annotations

from datetime import date

import pytest

from fhir_adapters import PatientRef
from fhir_adapters.keypad import keypad_digits
from harness.conversations import Converse, booked
from harness.sandbox import Sandbox
from harness.simulator import Persona
from voice_agent.dialogue import speech, templates
from voice_agent.dialogue.conductor import Conversation
from voice_agent.dialogue.factory import conversations
from voice_agent.dialogue.reply import Reply
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.runtime import Runtime

MISHEARD = [
    ("apostrophe", "Shivon O Brian"),  # Siobhan O'Brien
    ("multi-given", "Ana Cavalsky"),  # Anna Kowalski
    ("leap-day", "Lia Whitfeld"),  # Leah Whitfield
    ("short-name", "Al Eng"),  # Al Ng
    ("accented", "Jose Munos"),  # José Muñoz
]


def spelling_questions(said: list[str]) -> list[int]:
    """Where the agent asked for the surname's spelling (reading back a spoken date of birth or not)."""
    return [at for at, line in enumerate(said) if line.endswith(templates.SPELL_SURNAME_QUESTION)]


@pytest.mark.parametrize(("tag", "heard"), MISHEARD)
async def test_a_misheard_name_is_recovered_by_spelling_the_surname(
    sandbox: Sandbox, converse: Converse, tag: str, heard: str
) -> None:
    caller = sandbox.clinic.patient(tag)
    transcript = await converse(
        Persona(
            given=caller.given,
            family=caller.family,
            born=caller.birth_date,
            opening="when is my next appointment",
            overrides=[("name", heard)],
        )
    )
    spelled_at = spelling_questions(transcript.agent)[0]
    then = transcript.agent[spelled_at + 1]
    if then == templates.ASK_SPELL_GIVEN:  # the surname was heard wrong: the first name is spelled too
        then = transcript.agent[spelled_at + 2]
    assert then.startswith(templates.VERIFIED), transcript.text()
    assert not any("couldn't verify" in line for line in transcript.agent), transcript.text()
    assert transcript.end == "goodbye"


async def test_the_right_date_and_spelling_with_another_given_name_never_verify(
    sandbox: Sandbox, converse: Converse
) -> None:
    real = sandbox.clinic.patient("apostrophe")
    transcript = await converse(
        Persona(
            given="Roberto", family=real.family, born=real.birth_date, opening="when is my next appointment"
        )
    )
    assert len(spelling_questions(transcript.agent)) == 3, transcript.text()
    assert not any(line.startswith(templates.VERIFIED) for line in transcript.agent), transcript.text()
    assert not any("appointment with" in line for line in transcript.agent), transcript.text()


# ------------------------------------------------------------------- the surname keyed on the keypad

#: A fictional record for the keypad calls: Siobhan Okonkwo, whose name tiny.en hears as "Shivon
#: Okonquo"; OKONKWO is 6566596 on a phone keypad.
KEYED_ID, KEYED_BORN = "keyed-okonkwo", date(1986, 10, 9)


def keyed_caller(sandbox: Sandbox) -> str:
    with sandbox.raw() as raw:
        body = {
            "resourceType": "Patient",
            "id": KEYED_ID,
            "name": [{"use": "official", "family": "Okonkwo", "given": ["Siobhan"]}],
            "birthDate": KEYED_BORN.isoformat(),
        }
        raw.put(f"Patient/{KEYED_ID}", json=body).raise_for_status()
    return KEYED_ID


async def _at_spelling(agent: Runtime, opening: str) -> Conversation:
    """A call whose name was misheard and whose birth date is right: at the spelling question."""
    conversation = conversations(agent)(
        session=await agent.sessions.start(), understanding=RulesUnderstanding()
    )
    await conversation.greet()
    await conversation.respond(opening)
    assert (await conversation.respond("It's Shivon Okonquo")).text == templates.ASK_BIRTH_DATE
    reply = await conversation.respond(f"{KEYED_BORN:%B} {KEYED_BORN.day} {KEYED_BORN.year}")
    assert reply.text == templates.ASK_SPELL_SURNAME_HEARD_DATE.format(born=speech.birth_date(KEYED_BORN))
    return conversation


async def first_name(conversation: Conversation, reply: Reply, keyed: bool = False) -> Reply:
    """When the surname spelled is not the one heard ("Okonquo" for O K A F O R, or 6566596 keyed), the
    first name is asked for too: Siobhan, spelled or keyed. (A spelling close to the surname heard, like
    O K O N K N O, is not followed by that question.)"""
    if reply.text != templates.ASK_SPELL_GIVEN:
        return reply
    if keyed:
        return await conversation.keyed(keypad_digits("Siobhan"))
    return await conversation.respond("S I O B H A N")


async def test_a_misheard_caller_who_keys_their_surname_is_verified_and_books(
    agent: Runtime, sandbox: Sandbox
) -> None:
    patient_id = keyed_caller(sandbox)
    before = booked(sandbox, patient_id)
    conversation = await _at_spelling(agent, "I'd like to book an appointment")
    reply = await conversation.keyed("6566596")  # O K O N K W O, then # ends the entry
    assert reply.text == templates.ASK_SPELL_GIVEN  # keys that are not the surname heard
    reply = await first_name(conversation, reply, keyed=True)
    assert reply.text.startswith(templates.VERIFIED), reply.text
    assert conversation.session.patient == PatientRef(patient_id)
    answers = {"Shall I book it?": "yes please", "Would you like that?": "yes", "like?": "the first one"}
    reply = await conversation.respond("the first available")
    for _ in range(4):
        if reply.text.startswith("You're booked"):
            break
        answer = next((a for end, a in answers.items() if reply.text.endswith(end)), None)
        assert answer is not None, reply.text
        reply = await conversation.respond(answer)
    assert reply.text.startswith("You're booked"), reply.text
    assert len(set(booked(sandbox, patient_id)) - set(before)) == 1  # as FHIR holds it


async def test_a_wrong_keyed_surname_is_refused_as_a_wrong_spelling_is(
    agent: Runtime, sandbox: Sandbox
) -> None:
    keyed_caller(sandbox)
    replies = []
    for wrong in ("keys", "spelling"):
        conversation = await _at_spelling(agent, "when is my next appointment")
        if wrong == "keys":
            reply = await conversation.keyed("6566597")  # the last letter on the wrong key
        else:
            reply = await conversation.respond("O K A F O R")  # another surname, not a mishearing
        reply = await first_name(conversation, reply)
        replies.append(reply.text)
        assert conversation.session.patient is None and conversation.attempts == 1
    assert replies == [templates.VERIFY_FAILED_RETRY] * 2


@pytest.mark.parametrize("heard", ["O K O N K N O", "O K O N K W O O", "O K N K W O", "O, K, O, N, K, W, O"])
async def test_a_spelling_heard_with_a_letter_wrong_still_finds_the_caller(
    agent: Runtime, sandbox: Sandbox, heard: str
) -> None:
    """Over 8 kHz tiny.en writes spelled letters with slips ("N" for "W", a letter doubled or lost): the
    spelling and the birth date still find the one record, and only that one."""
    patient_id = keyed_caller(sandbox)
    conversation = await _at_spelling(agent, "when is my next appointment")
    reply = await first_name(conversation, await conversation.respond(heard))
    assert reply.text.startswith(templates.VERIFIED), reply.text
    assert conversation.session.patient == PatientRef(patient_id)


@pytest.mark.parametrize("heard", ["O K A F O R", "S M I T H", "W H I T F I E L D", "O K O"])
async def test_a_spelling_of_another_surname_is_refused(agent: Runtime, sandbox: Sandbox, heard: str) -> None:
    keyed_caller(sandbox)
    conversation = await _at_spelling(agent, "when is my next appointment")
    reply = await first_name(conversation, await conversation.respond(heard))
    assert reply.text == templates.VERIFY_FAILED_RETRY, reply.text
    assert conversation.session.patient is None and conversation.attempts == 1


# ---------------------------------------------------------------- a date of birth misheard on the line


async def test_a_misheard_date_read_back_is_corrected_and_the_caller_verified(
    agent: Runtime, sandbox: Sandbox
) -> None:
    """flite's "July 25, 1956" came back from tiny.en as "July 26, 1956": the surname question reads the
    date back, the caller says it again, and the call goes on verified. The caller heard only their own
    words before that."""
    caller = sandbox.clinic.patient("apostrophe")
    misheard = caller.birth_date.replace(day=caller.birth_date.day % 28 + 1)
    conversation = conversations(agent)(
        session=await agent.sessions.start(), understanding=RulesUnderstanding()
    )
    await conversation.greet()
    await conversation.respond("when is my next appointment")
    await conversation.respond(f"It's {caller.given} {caller.family}")
    reply = await conversation.respond(f"{misheard:%B} {misheard.day}, {misheard.year}")
    assert reply.text == templates.ASK_SPELL_SURNAME_HEARD_DATE.format(born=speech.birth_date(misheard))
    born = caller.birth_date
    reply = await conversation.respond(f"No, that's wrong. It's {born:%B} {born.day}, {born.year}.")
    assert reply.text.startswith(templates.VERIFIED), reply.text
    assert conversation.session.patient is not None
