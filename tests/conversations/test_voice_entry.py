"""What a phone adds to the dialogue: a date of birth keyed on the keypad, and answers spoken in pieces."""

from __future__ import annotations

from datetime import date

from harness.sandbox import Sandbox
from voice_agent.dialogue import templates
from voice_agent.dialogue.conductor import Conversation
from voice_agent.dialogue.factory import conversations
from voice_agent.dialogue.keypad import keyed_date
from voice_agent.dialogue.reply import State
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.runtime import Runtime


async def _at_birth_date(agent: Runtime, sandbox: Sandbox) -> tuple[Conversation, date]:
    patient = sandbox.clinic.patient("with-appointments")
    session = await agent.sessions.start()
    conversation = conversations(agent)(session=session, understanding=RulesUnderstanding())
    await conversation.greet()
    await conversation.respond("when is my next appointment")
    reply = await conversation.respond(f"{patient.given} {patient.family}")
    assert reply.text == templates.ASK_BIRTH_DATE
    return conversation, patient.birth_date


async def test_a_keyed_birth_date_verifies_the_caller(agent: Runtime, sandbox: Sandbox) -> None:
    conversation, born = await _at_birth_date(agent, sandbox)
    reply = await conversation.keyed(born.strftime("%m%d%Y"))
    assert reply.text.startswith(templates.VERIFIED) and "appointment" in reply.text
    assert conversation.session.patient is not None


async def test_a_keyed_date_that_is_no_date_is_asked_again_without_a_lookup(
    agent: Runtime, sandbox: Sandbox
) -> None:
    conversation, _ = await _at_birth_date(agent, sandbox)
    reply = await conversation.keyed("13451990")  # month 13
    assert reply.text == templates.ASK_BIRTH_DATE_KEYED_AGAIN and conversation.attempts == 0


async def test_keys_where_no_keypad_answer_is_expected_ask_the_caller_to_speak(agent: Runtime) -> None:
    session = await agent.sessions.start()
    conversation = conversations(agent)(session=session, understanding=RulesUnderstanding())
    await conversation.greet()
    reply = await conversation.keyed("1234")
    assert reply.text.startswith("Sorry, I can't take keypad entry") and reply.end is None


async def test_half_a_birth_date_waits_for_the_rest(agent: Runtime, sandbox: Sandbox) -> None:
    conversation, _ = await _at_birth_date(agent, sandbox)
    assert conversation.awaits_more("July fourteenth")
    assert conversation.awaits_more("the third of March")
    assert not conversation.awaits_more("July fourteenth nineteen sixty two")
    assert not conversation.awaits_more("I'd rather not say")
    fresh = conversations(agent)(session=await agent.sessions.start(), understanding=RulesUnderstanding())
    await fresh.greet()
    assert fresh.state is State.TASK
    assert not fresh.awaits_more("July fourteenth")  # only where a date is the answer


def test_keyed_dates_are_month_day_year_and_real() -> None:
    today = date(2026, 11, 23)
    assert keyed_date("07141962", today=today) == date(1962, 7, 14)
    assert keyed_date("02291964", today=today) == date(1964, 2, 29)
    for bad in ("0714196", "13011990", "02301990", "01012030", "01011899", "07-14-62"):
        assert keyed_date(bad, today=today) is None
