"""Guardrails do not fire on an ordinary answer: every name the synthetic clinic can hold, said the ways
callers say names, and birth dates in every format, misheard shapes included, are never taken as an
emergency, a question about someone else, medical advice or a rule change. (The rate is measured here
on the words; an answer heard wrong enough to *be* such words is the speech model's, not the screen's.)"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from harness.simulator import say_date, spell
from voice_agent.dialogue.understanding import Expectation, UnderstandingContext
from voice_agent.dialogue.understanding.guardrails import GUARDED_INTENTS, screen
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.sandbox import roster

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=ZoneInfo("America/New_York"))
NAME_SHAPES = (
    "{g} {f}",
    "It's {g} {f}",
    "my name is {g} {f}",
    "{f}, {g}",
    "this is {g} {f}, calling about my appointment",
    "{g} {f}, {spelled}",
)
#: What tiny.en wrote for uncommon names through 8 kHz audio (issue 16), and shapes like them.
MISHEARD = (
    "It's held on to Conbo",
    "It's Shabbanda Conquo",
    "It's show burner control",
    "It's been N&G YN",
    "It's Min An Wen",
    "Kill Jenkins",
    "It's Paige Bleeding",
    "Jack Payne",
    "Doctor Who",
    "Heather Gunn",
)


def names() -> list[str]:
    people = [(g, f) for g in roster.GIVEN_FEMALE + roster.GIVEN_MALE for f in roster.FAMILY]
    people += [(e.given[0], e.family) for e in roster.ROSTER]
    return [shape.format(g=g, f=f, spelled=spell(f)) for g, f in people for shape in NAME_SHAPES] + list(
        MISHEARD
    )


def birth_dates() -> list[str]:
    days = [date(1940, 1, 1) + timedelta(days=97 * n) for n in range(280)]
    styles = ("long", "numeric", "ordinal", "sentence", "keypad")
    return [say_date(day, style) for day in days for style in styles]


@pytest.mark.parametrize(
    ("expecting", "answers"),
    [(Expectation.FULL_NAME, names()), (Expectation.BIRTH_DATE, birth_dates())],
    ids=["names", "birth-dates"],
)
def test_no_ordinary_answer_trips_a_guardrail(expecting: Expectation, answers: list[str]) -> None:
    rules = RulesUnderstanding()
    context = UnderstandingContext(now=NOW, expecting=expecting)
    tripped = [
        a for a in answers if screen(a) is not None or rules.parse(a, context).intent in GUARDED_INTENTS
    ]
    assert len(answers) > 1000
    assert tripped == [], f"{len(tripped)} of {len(answers)}: {tripped[:20]}"
