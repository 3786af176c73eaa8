"""``CollectCallback -> CallbackAnswer``: whether the caller wants a callback (or transfer), and the
number to call when the carrier attested none."""

from __future__ import annotations

from dataclasses import dataclass

from voice_agent.dialogue import templates
from voice_agent.dialogue.context import CallContext
from voice_agent.dialogue.reply import State
from voice_agent.dialogue.tasks.base import Ask, DialogueTask, Done, Step
from voice_agent.dialogue.tasks.confirm import is_yes_or_no
from voice_agent.dialogue.understanding import Intent, Understood, spoken

__all__ = ["CallbackAnswer", "CollectCallback"]


@dataclass(frozen=True)
class CallbackAnswer:
    accepted: bool
    #: Digits the caller gave (10 or more), if they gave any.
    number: str | None = None
    #: The caller said goodbye rather than just "no": the call ends either way.
    goodbye: bool = False


class CollectCallback(DialogueTask[CallbackAnswer]):
    def __init__(self, offer: str, *, asking_number: bool = False) -> None:
        self.state = State.CALLBACK_NUMBER if asking_number else State.CALLBACK_OFFER
        self._offer = offer

    async def start(self, call: CallContext) -> Step[CallbackAnswer]:
        return Ask(self._offer)

    def ask_number(self, text: str = templates.ASK_CALLBACK_NUMBER) -> Ask:
        self.state = State.CALLBACK_NUMBER
        return Ask(text)

    async def handle(self, answer: Understood, call: CallContext) -> Step[CallbackAnswer]:
        phone = answer.slots.phone
        if self.state is State.CALLBACK_NUMBER:
            digits = "".join(c for c in (phone or "") if c.isdigit())
            if len(digits) >= 10:
                return Done(CallbackAnswer(True, digits))
            if answer.intent in (Intent.DENY, Intent.GOODBYE):
                return Done(CallbackAnswer(False, goodbye=True))
            return Ask(templates.ASK_CALLBACK_NUMBER, stalled=True)
        if answer.intent in (Intent.AFFIRM, Intent.HUMAN) or phone:
            return Done(CallbackAnswer(True, phone or None))
        if answer.intent in (Intent.DENY, Intent.NOTHING_ELSE, Intent.GOODBYE):
            return Done(CallbackAnswer(False, goodbye=answer.intent is Intent.GOODBYE))
        return Ask(templates.TOO_MANY_MISUNDERSTANDINGS, stalled=True)

    async def keyed(self, digits: str, call: CallContext) -> Step[CallbackAnswer] | None:
        if self.state is not State.CALLBACK_NUMBER:
            return None
        if len(digits) >= 10:
            return Done(CallbackAnswer(True, digits[:20]))
        return Ask(templates.ASK_CALLBACK_NUMBER, stalled=True)

    def complete(self, words: str, call: CallContext) -> bool:
        if self.state is State.CALLBACK_NUMBER:
            return sum(c.isdigit() for c in spoken.spoken_numbers(spoken.fold(words))) >= 10
        return is_yes_or_no(words)

    def awaits_more(self, words: str, call: CallContext) -> bool:
        if self.state is not State.CALLBACK_NUMBER:
            return False
        return 0 < sum(c.isdigit() for c in spoken.spoken_numbers(spoken.fold(words))) < 10
