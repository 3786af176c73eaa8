"""What the dialogue calls a whole answer (``Conversation.complete_answer``), at each question of a real
call against the in-memory clinic: turn-taking answers at once on these words, and waits on the others.

A wrong "whole" makes the agent answer over a caller who was not done; a wrong "not whole" makes them
wait out the maximum pause. So each question is tried with both kinds of words, and with phrasings the
rules were not written from.
"""

from __future__ import annotations

import pytest

from tests.dialogue.test_tasks_unit import LIN, FakeScheduling, at, conversation
from voice_agent.dialogue.completeness import trails_off
from voice_agent.dialogue.conductor import Conversation
from voice_agent.dialogue.reply import State


async def at_question(state: State) -> Conversation:
    clinic = FakeScheduling()
    for hour in (9, 10, 11):
        clinic.add_slot(LIN, at(1, hour))
    talk, _ = conversation(clinic)
    await talk.greet()
    booking = ["I'd like to book an appointment", "Ana Quispe", "May 17th 1980", "tomorrow", "the second one"]
    asked_after = {
        State.NAME: 1,
        State.BIRTH_DATE: 2,
        State.PREFERENCE: 3,
        State.CHOOSE_SLOT: 4,
        State.CONFIRM: 5,
    }
    steps = {state: booking[:count] for state, count in asked_after.items()}
    for line in steps.get(state, []):
        await talk.respond(line)
    assert talk.state is state
    return talk


WHOLE = {
    State.TASK: ["I'd like to book an appointment.", "I need to cancel my appointment", "can I reschedule"],
    State.NAME: ["It's Ana Quispe.", "my name is Ana Quispe", "Quispe, Ana"],
    State.BIRTH_DATE: ["May 17th, 1980.", "the seventeenth of May nineteen eighty", "5/17/1980"],
    State.CHOOSE_SLOT: ["The second one.", "the 10 o'clock please", "number three"],
    State.CONFIRM: ["Yes please.", "no thanks", "yeah that's right"],
}
NOT_WHOLE = {
    State.TASK: ["I was wondering", "so um", "Hi, yes, I"],
    State.NAME: ["It's Ana and", "my name is", "Ana"],
    State.BIRTH_DATE: ["May 17th", "I was born on the", "May 17th, 1980, no wait"],
    State.CHOOSE_SLOT: ["hmm let me think", "what about", "the"],
    State.CONFIRM: ["yes, but", "um", "well"],
    State.PREFERENCE: ["tomorrow morning", "with Dr. Lin next week", "as soon as possible"],
}


@pytest.mark.parametrize(("state", "words"), [(s, w) for s, ws in WHOLE.items() for w in ws])
async def test_a_whole_answer_is_acted_on_at_once(state: State, words: str) -> None:
    talk = await at_question(state)
    assert talk.complete_answer(words)


@pytest.mark.parametrize(("state", "words"), [(s, w) for s, ws in NOT_WHOLE.items() for w in ws])
async def test_part_of_an_answer_or_an_open_one_waits(state: State, words: str) -> None:
    """Including every preference: "tomorrow morning" may go on "... with Dr. Lin"; smart-turn decides."""
    talk = await at_question(state)
    assert not talk.complete_answer(words)


@pytest.mark.parametrize("state", [State.NAME, State.BIRTH_DATE, State.PREFERENCE, State.CONFIRM])
async def test_an_emergency_is_answered_at_once_at_any_question(state: State) -> None:
    talk = await at_question(state)
    assert talk.complete_answer("my husband has chest pain and can't breathe")


async def test_judging_words_changes_nothing_in_the_call() -> None:
    """``complete_answer`` only reads: the question, the attempts and the booking stand."""
    talk = await at_question(State.CHOOSE_SLOT)
    before = (talk.state, talk.attempts, talk.last_reply)
    for words in ("the second one", "cancel it", "my husband has chest pain"):
        talk.complete_answer(words)
    assert (talk.state, talk.attempts, talk.last_reply) == before


def test_trailing_words_are_a_sentence_under_way() -> None:
    assert trails_off("March third and") and trails_off("It's um") and trails_off("the 28th, sorry")
    assert not trails_off("March third 1980") and not trails_off("yes please")
