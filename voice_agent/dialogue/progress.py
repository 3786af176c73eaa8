"""The progress limit, as pure bookkeeping: no caller holds a line by getting nowhere, and no prompt is
said a third time in a row. The conductor reports each turn; this says whether the call goes on, gets a
callback offer, or ends. Kept apart from the conductor so the rule can be read (and tested) alone."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

__all__ = ["MAX_STALLED_TURNS", "Progress", "Verdict"]

#: Turns in a row that get the call nowhere (asked to repeat, not understood, a refused topic or rule
#: change): at this many a callback is offered; one more and the call ends, so no caller holds a line.
MAX_STALLED_TURNS = 3


class Verdict(Enum):
    GO_ON = "go_on"
    OFFER_CALLBACK = "offer_callback"
    END = "end"


@dataclass
class Progress:
    #: Consecutive turns without progress.
    stalled: int = 0
    _said: list[str] = field(default_factory=list)

    def said(self, text: str) -> None:
        """Every sentence the agent says (the last three are what "a third time" is judged on)."""
        self._said = [*self._said[-2:], text]

    def after_turn(self, *, stalled: bool, repeat_asked: bool, at_callback_offer: bool) -> Verdict:
        """A turn's outcome: ``stalled`` if it got nowhere; ``repeat_asked`` if the caller asked to hear
        the last reply again (answered, but counted); ``at_callback_offer`` if the agent is already
        offering a callback (then a further stall ends the call)."""
        self.stalled = self.stalled + 1 if stalled else 0
        third_time = stalled and not repeat_asked and len(self._said) >= 3 and len(set(self._said[-3:])) == 1
        if self.stalled < MAX_STALLED_TURNS and not third_time:
            return Verdict.GO_ON
        if self.stalled > MAX_STALLED_TURNS or at_callback_offer:
            return Verdict.END
        return Verdict.OFFER_CALLBACK
