"""Scheduling preferences: the days and times of one utterance combined into one :class:`When`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, time
from typing import Final

from .dates import _parse_dates
from .times import _parse_times

_OPEN: Final = re.compile(
    r"\b(?:1st|next|earliest|soonest) (?:available|availability|opening|open|slot|appointment|spot|possible"
    r"|one|free|time|thing (?:you|that|available))\b"
    r"|\bsoonest\b|\bas soon as (?:possible|you can|i can|they can|we can)\b|\basap\b|\bearliest\b"
    r"|\bany ?time\b|\bwhenever\b|\bno preference\b|\bdoesnt matter\b|\bdont mind\b|\bany day\b"
    r"|\bwhat ?ever(?:s| is)? (?:available|open|works|you have|(?:comes )?1st|earliest|soonest|next)\b"
    r"|\bnot picky\b|\bflexible\b"
)


@dataclass(frozen=True)
class When:
    """Scheduling constraints said in one utterance; ``open_ended`` is "first available" / "any time"."""

    date_from: date | None = None
    date_to: date | None = None
    not_before: time | None = None
    not_after: time | None = None
    open_ended: bool = False

    @property
    def found(self) -> bool:
        return self.open_ended or any(
            v is not None for v in (self.date_from, self.date_to, self.not_before, self.not_after)
        )


def parse_when(num_text: str, today: date, *, ordinals_are_days: bool = True) -> When:
    """Dates and times of day the caller asked for, resolved against ``today``.

    ``ordinals_are_days`` is False while the caller is choosing among offered options, where
    "the second" is an option, not the 2nd of the month ("on the 2nd" still is a date).
    """
    date_from, date_to = _parse_dates(num_text, today, ordinals_are_days=ordinals_are_days)
    not_before, not_after = _parse_times(num_text)
    return When(date_from, date_to, not_before, not_after, bool(_OPEN.search(num_text)))
