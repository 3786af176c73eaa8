"""``Confirm -> bool``: yes or no to one question the conductor words ("Shall I book it?")."""

from __future__ import annotations

from voice_agent.dialogue.context import CallContext
from voice_agent.dialogue.reply import State
from voice_agent.dialogue.tasks.base import Ask, DialogueTask, Done, Step
from voice_agent.dialogue.understanding import Intent, Understood, spoken

__all__ = ["Confirm", "is_yes_or_no"]

_YES_NO = frozenset(
    {"yes", "yeah", "yep", "sure", "ok", "okay", "correct", "please", "no", "nope", "nah", "right"}
)


def is_yes_or_no(words: str) -> bool:
    """A short answer made only of yes/no words ("yes please", "no thanks"): a whole answer."""
    tokens = spoken.fold(words).split()
    return 0 < len(tokens) <= 4 and tokens[0] in _YES_NO


class Confirm(DialogueTask[bool]):
    def __init__(self, question: str) -> None:
        self.state = State.CONFIRM
        self._question = question

    async def start(self, call: CallContext) -> Step[bool]:
        return Ask(self._question)

    async def handle(self, answer: Understood, call: CallContext) -> Step[bool]:
        if answer.intent is Intent.AFFIRM:
            return Done(True)
        if answer.intent in (Intent.DENY, Intent.NOTHING_ELSE):
            return Done(False)
        return Ask(self._question, stalled=True)

    def complete(self, words: str, call: CallContext) -> bool:
        return is_yes_or_no(words)
