"""Names heard wrong over the phone: the date of birth and a spelled surname find the caller, and a wrong
name with the right date still never verifies. The misheard names here are the kind tiny.en writes for
these names through 8 kHz audio; each conversation runs on the real sandbox, in rules and hybrid modes."""

from __future__ import annotations

import pytest

from tests.conftest import Sandbox
from tests.conversations.conftest import Converse
from tests.conversations.simulator import Persona
from voice_agent.dialogue import templates

MISHEARD = [
    ("apostrophe", "Shivon O Brian"),  # Siobhan O'Brien
    ("multi-given", "Ana Cavalsky"),  # Anna Kowalski
    ("leap-day", "Lia Whitfeld"),  # Leah Whitfield
    ("short-name", "Al Eng"),  # Al Ng
    ("accented", "Jose Munos"),  # José Muñoz
]


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
    spelled_at = transcript.agent.index(templates.ASK_SPELL_SURNAME)
    assert transcript.agent[spelled_at + 1].startswith(templates.VERIFIED), transcript.text()
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
    assert transcript.agent.count(templates.ASK_SPELL_SURNAME) == 3, transcript.text()
    assert not any(line.startswith(templates.VERIFIED) for line in transcript.agent), transcript.text()
    assert not any("appointment with" in line for line in transcript.agent), transcript.text()
