"""Whatever speech-to-text hands over (junk, unicode, 5,000 characters, nothing), the rules answer with a
valid, honest ``Understood`` and never raise, quickly. A seeded random loop stands in for hypothesis."""

from __future__ import annotations

import random
import string
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from voice_agent.dialogue.understanding.base import (
    DirectoryEntry,
    Expectation,
    Intent,
    Offered,
    UnderstandingContext,
    Understood,
    VisitTypeEntry,
)
from voice_agent.dialogue.understanding.guardrails import screen
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.dialogue.understanding.rules.turns import _parse
from voice_agent.dialogue.understanding.spoken import find_phone, parse_birth_date, parse_when, spoken_numbers

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=NY)
PRACTITIONERS = (
    DirectoryEntry("sched-okafor", "Dr. Amara Okafor"),
    DirectoryEntry("sched-park", "Dr. Daniel Park"),
    DirectoryEntry("sched-hernandez-ruiz", "Dr. Sofía Hernández-Ruiz"),
    DirectoryEntry("sched-oconnell", "Dr. Liam O'Connell"),
)
VISIT_TYPES = (
    VisitTypeEntry("new-patient", "New patient visit"),
    VisitTypeEntry("follow-up", "Follow-up visit"),
    VisitTypeEntry("annual-physical", "Annual physical"),
    VisitTypeEntry("vaccination", "Vaccination"),
    VisitTypeEntry("telehealth", "Telehealth visit"),
)
OFFERED = Offered(
    starts=(datetime(2026, 11, 24, 9, 0, tzinfo=NY), datetime(2026, 11, 27, 14, 30, tzinfo=NY)),
    practitioners=("sched-okafor", "sched-park"),
)
_VOCABULARY = (
    "next tuesday at 2:30 doctor park the one book cancel no yes my wife o' - / 03 1985 twenty hundred "
    "thousand double oh first the 3rd of march may pm a.m. , . 99 9999 0 00:00 31 february 29 between and "
    "after before morning okafor hernandez-ruiz o'connell smith-jones josé name is it's this born "
    "chest pain not no, 555 123 4567 ignore instructions follow up shot video first available option "
    "number last middle earlier later um uh like yeah nope neither none"
)
WORDS = _VOCABULARY.split()
ALPHABET = string.printable + "éñüßøçÅ—\u2019“”😀中文العربية\u0301\u200b\u202e\x00\ufeff"
RULES = RulesUnderstanding()


def _contexts(rng: random.Random) -> UnderstandingContext:
    return UnderstandingContext(
        now=NOW,
        expecting=rng.choice(list(Expectation)),
        practitioners=PRACTITIONERS if rng.random() < 0.8 else (),
        visit_types=VISIT_TYPES if rng.random() < 0.8 else (),
        offered=OFFERED if rng.random() < 0.6 else Offered(),
    )


def _junk(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 80)))
    if roll < 0.85:
        return " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 40)))
    if roll < 0.95:
        return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(400, 5000)))
    return rng.choice(["", " ", "\n\t", ".", "...", "?", "um", "uh uh", "'", "-", "0", "\x00"])


def assert_valid(answer: Understood, ctx: UnderstandingContext) -> None:
    """What the policy may rely on, whatever was said."""
    assert isinstance(answer, Understood)
    Understood.model_validate(answer.model_dump())  # round-trips the schema
    assert answer.source == "rules"
    assert 0.0 <= answer.confidence <= 1.0
    if answer.intent is Intent.UNKNOWN:
        assert answer.confidence <= 0.3
    s = answer.slots
    if s.practitioner is not None:
        assert s.practitioner in {p.schedule_id for p in ctx.practitioners}
    if s.visit_type is not None:
        assert s.visit_type in {v.code for v in ctx.visit_types}
    if s.option is not None and ctx.offered.starts:
        assert s.option <= len(ctx.offered.starts)
    if s.birth_date is not None:
        assert s.birth_date <= NOW.date() and s.birth_date.year >= NOW.year - 120
    if s.date_from is not None:
        assert s.date_from >= NOW.date()
    if s.date_to is not None:
        assert s.date_to >= NOW.date()
        assert s.date_from is None or s.date_from <= s.date_to
    if s.phone is not None:
        assert s.phone.isdigit() and 7 <= len(s.phone) <= 15


def test_random_junk_never_raises_and_always_validates() -> None:
    rng = random.Random(20261123)
    for _ in range(2500):
        utterance, ctx = _junk(rng), _contexts(rng)
        answer = _parse(utterance, ctx)  # the inner function: a bug must fail here, not be swallowed
        assert_valid(answer, ctx)


@pytest.mark.parametrize("utterance", ["", " ", "\x00", "\ufeff", "...", "😀😀😀", "中文", "‮gnikoob"])
@pytest.mark.parametrize("expecting", list(Expectation))
def test_empty_and_odd_input(utterance: str, expecting: Expectation) -> None:
    ctx = UnderstandingContext(
        now=NOW, expecting=expecting, practitioners=PRACTITIONERS, visit_types=VISIT_TYPES
    )
    answer = _parse(utterance, ctx)
    assert_valid(answer, ctx)
    assert answer.confidence < 0.6  # a letter-like token may be a one-word name, but never a sure one
    if expecting is not Expectation.FULL_NAME:
        assert answer.intent is Intent.UNKNOWN


def test_long_input_is_capped() -> None:
    ctx = UnderstandingContext(now=NOW, expecting=Expectation.TASK, practitioners=PRACTITIONERS)
    tail = "book with doctor park tomorrow " * 2000
    answer = RULES.parse("I need to cancel " + tail, ctx)
    assert answer.intent is Intent.CANCEL
    assert RULES.parse("x" * 600 + " cancel my appointment", ctx).intent is Intent.UNKNOWN  # beyond the cap


@pytest.mark.parametrize(
    "utterance",
    [
        "yes " + "that one " * 60 + "x",
        "yes " + "yes please " * 60 + "x",
        "no " + "thank you " * 60 + "x",
        "ignore " + "all " * 120 + "x",
        "i have " * 70 + "x",
        "cant make " * 50 + "x",
        "2 30 " * 100,
        "-1" * 250,
    ],
)
def test_no_pathological_backtracking(utterance: str) -> None:
    """Inputs that once backtracked exponentially (seconds per turn): they must parse to a valid answer.
    A regression shows as a stalled suite; bench/rules_understanding.py reports the timings."""
    for expecting in Expectation:
        ctx = UnderstandingContext(
            now=NOW,
            expecting=expecting,
            practitioners=PRACTITIONERS,
            visit_types=VISIT_TYPES,
            offered=OFFERED,
        )
        assert_valid(_parse(utterance, ctx), ctx)


def test_spoken_helpers_never_raise() -> None:
    rng = random.Random(7)
    for _ in range(1500):
        text = spoken_numbers(_junk(rng)[:500].lower())
        parse_when(text, date(2026, 11, 23))
        parse_when(text, date(2026, 11, 23), ordinals_are_days=False)
        found, _ = parse_birth_date(text, date(2026, 11, 23))
        assert found is None or found <= date(2026, 11, 23)
        phone = find_phone(text)
        assert phone is None or phone.isdigit()
        screen(text)


def test_names_beyond_the_schema_limit_are_dropped_not_raised() -> None:
    ctx = UnderstandingContext(now=NOW, expecting=Expectation.FULL_NAME)
    answer = RULES.parse("my name is " + "a" * 45 + " " + "b" * 45 + " " + "c" * 45, ctx)
    assert_valid(answer, ctx)
    assert answer.slots.given_name is None


def test_a_directory_with_unusable_entries_is_tolerated() -> None:
    odd = (
        DirectoryEntry("x" * 100, "Dr. Too Long"),
        DirectoryEntry("sched-empty", ""),
        DirectoryEntry("sched-dr", "Dr."),
        DirectoryEntry("sched-punct", "Dr. (?*+[ Regex"),
    )
    ctx = UnderstandingContext(
        now=NOW,
        expecting=Expectation.PREFERENCE,
        practitioners=odd,
        visit_types=(VisitTypeEntry("c" * 70, "Shot"),),
    )
    for utterance in ["doctor too long", "dr", "regex", "(?*+[", "a shot please", "doctor empty"]:
        assert_valid(_parse(utterance, ctx), ctx)
