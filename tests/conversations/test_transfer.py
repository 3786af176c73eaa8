"""Hand-offs on a call that can be put through to the front desk (a SIP call within the desk's hours):
the offer is worded as a transfer, accepting it ends the dialogue with a transfer, and a transfer that
fails becomes the callback escalation, which the caller hears. Against the sandbox and the real store."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from harness.sandbox import Sandbox
from voice_agent.dialogue import templates
from voice_agent.dialogue.conductor import Conversation
from voice_agent.dialogue.factory import conversations
from voice_agent.dialogue.reply import State
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.runtime import Runtime


@pytest.fixture
async def call(agent: Runtime) -> AsyncIterator[Conversation]:
    async with agent.sessions.call(caller_number="+15550170001") as session:
        conversation = conversations(agent)(session=session, understanding=RulesUnderstanding())
        conversation.live_transfer = lambda: True
        yield conversation


async def escalation_count(agent: Runtime) -> int:
    return len(await agent.escalations.queue(limit=500))


async def test_asking_for_a_person_is_put_through_not_called_back(agent: Runtime, call: Conversation) -> None:
    await call.greet()
    before = await escalation_count(agent)
    reply = await call.respond("Can I speak to someone at the front desk?")
    assert reply.transfer and reply.end == "transferred"
    assert reply.text == templates.TRANSFERRING
    assert await escalation_count(agent) == before  # a person has the call: nothing to call back


async def test_a_failed_transfer_becomes_a_callback_the_caller_hears(
    agent: Runtime, call: Conversation
) -> None:
    await call.greet()
    await call.respond("I want to talk to a real person")
    before = await escalation_count(agent)
    reply = await call.transfer_failed()
    assert reply.end == "escalated" and not reply.transfer
    assert "couldn't reach the front desk" in reply.text and "call you back" in reply.text
    queue = await agent.escalations.queue(limit=500)
    assert len(queue) == before + 1
    newest = max(queue, key=lambda e: e.created_at)
    assert newest.category == "caller_request"
    opened = await agent.escalations.get(newest.id, "staff-test")  # the number staff will call
    assert opened.callback_number == "+15550170001"


async def test_without_a_caller_number_a_failed_transfer_asks_for_one(agent: Runtime) -> None:
    async with agent.sessions.call(caller_number=None) as session:
        call = conversations(agent)(session=session, understanding=RulesUnderstanding())
        call.live_transfer = lambda: True
        await call.greet()
        assert (await call.respond("operator please")).transfer
        reply = await call.transfer_failed()
        assert reply.end is None and call.state is State.CALLBACK_NUMBER
        assert reply.text.endswith("What is the best number to call you back on?")
        before = await escalation_count(agent)
        done = await call.respond("five five five, zero one seven, zero zero zero two")
        assert done.end == "escalated"
        assert await escalation_count(agent) == before + 1


async def test_a_medical_question_offers_the_front_desk_and_a_yes_transfers(call: Conversation) -> None:
    await call.greet()
    offer = await call.respond("Should I double my blood pressure medication?")
    assert "put you through" in offer.text and "call you back" not in offer.text
    assert (await call.respond("yes please")).transfer


async def test_outside_the_desk_hours_the_offer_stays_a_callback(sandbox: Sandbox, agent: Runtime) -> None:
    async with agent.sessions.call(caller_number="+15550170003") as session:
        call = conversations(agent)(session=session, understanding=RulesUnderstanding())
        call.live_transfer = lambda: False  # closed now
        await call.greet()
        offer = await call.respond("Should I double my blood pressure medication?")
        assert "call you back" in offer.text and "put you through" not in offer.text
        reply = await call.respond("yes")
        assert not reply.transfer and reply.end == "escalated"
