"""What one turn of the dialogue gives the channel: the words to say, and whether the call ends."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from voice_agent.session import EndReason

__all__ = ["SPELLING_STATES", "Reply", "State"]


class State(StrEnum):
    """The question the caller is answering (a closed set: logged, never what they said)."""

    TASK = "task"
    NAME = "name"
    BIRTH_DATE = "birth_date"
    SPELL_SURNAME = "spell_surname"
    SPELL_GIVEN = "spell_given"
    CHOOSE_APPOINTMENT = "choose_appointment"
    PREFERENCE = "preference"
    RELAX = "relax"  # nothing matched the preference: offer the nearest instead?
    CHOOSE_SLOT = "choose_slot"
    CONFIRM = "confirm"
    ANYTHING_ELSE = "anything_else"
    CALLBACK_OFFER = "callback_offer"
    CALLBACK_NUMBER = "callback_number"
    ENDED = "ended"


#: The questions answered letter by letter (spoken or keyed): transcribed with the alphabet prompt, keys
#: ended by #.
SPELLING_STATES = frozenset({State.SPELL_SURNAME, State.SPELL_GIVEN})


@dataclass(frozen=True)
class Reply:
    text: str
    end: EndReason | None = None
    #: Put the call through to the front desk once ``text`` has been said (only with end="transferred").
    transfer: bool = False
