"""A dialogue task: one question (or a few) that ends with a typed result, as LiveKit Agents'
``AgentTask[ResultT]`` does (``GetDOBTask`` returns a date). A task says what the caller is asked, takes
each understood answer, and gives back a step: ask again, done with its result, or closed (it cannot
finish in this call). The conductor sequences tasks; tasks never switch to another task themselves."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, TypeVar

from voice_agent.dialogue.context import CallContext
from voice_agent.dialogue.ports import Category
from voice_agent.dialogue.reply import State
from voice_agent.dialogue.understanding import Expectation, Understood

__all__ = ["Ask", "Closed", "DialogueTask", "Done", "Step"]

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


@dataclass(frozen=True)
class Ask:
    """Say ``text`` and wait for the answer. ``stalled``: the turn got nowhere (a re-ask)."""

    text: str
    stalled: bool = False


@dataclass(frozen=True)
class Done(Generic[T_co]):
    """The task's result; ``said`` leads the next words the caller hears ("Thank you, you're verified.")."""

    value: T_co
    said: str = ""


@dataclass(frozen=True)
class Closed:
    """The task cannot finish in this call: the conductor offers a callback with these words."""

    category: Category
    text: str
    end_if_declined: bool = True


Step = Ask | Done[T] | Closed

_EXPECTING = {
    State.TASK: Expectation.TASK,
    State.NAME: Expectation.FULL_NAME,
    State.BIRTH_DATE: Expectation.BIRTH_DATE,
    State.SPELL_SURNAME: Expectation.FULL_NAME,  # letters come through the name reader ("O K O N ...")
    State.SPELL_GIVEN: Expectation.FULL_NAME,
    State.CHOOSE_APPOINTMENT: Expectation.CHOOSE_APPOINTMENT,
    State.PREFERENCE: Expectation.PREFERENCE,
    State.RELAX: Expectation.CONFIRM,
    State.CHOOSE_SLOT: Expectation.CHOOSE_SLOT,
    State.CONFIRM: Expectation.CONFIRM,
    State.ANYTHING_ELSE: Expectation.ANYTHING_ELSE,
    State.CALLBACK_OFFER: Expectation.CALLBACK,
    State.CALLBACK_NUMBER: Expectation.CALLBACK,
    State.ENDED: Expectation.TASK,
}


def expecting(state: State) -> Expectation:
    return _EXPECTING[state]


class DialogueTask(ABC, Generic[T]):
    #: The question the caller is answering now.
    state: State
    #: The words of the last question this task asked (what "say that again" and a resume repeat).
    asked: str = ""

    @abstractmethod
    async def start(self, call: CallContext) -> Step[T]: ...

    @abstractmethod
    async def handle(self, answer: Understood, call: CallContext) -> Step[T]: ...

    async def keyed(self, digits: str, call: CallContext) -> Step[T] | None:
        """A keypad entry; None: this question takes no keypad answer."""
        return None

    def question(self) -> str:
        """The question to ask again after an interruption (a refused topic, a declined callback)."""
        return self.asked

    def complete(self, words: str, call: CallContext) -> bool:
        """Whether ``words`` are a whole answer to the current question (turn-taking may answer at
        once); False when unsure: then the usual end-of-turn wait applies."""
        return False

    def awaits_more(self, words: str, call: CallContext) -> bool:
        """Whether ``words`` are the first part of an answer spoken in pieces (wait for the rest)."""
        return False
