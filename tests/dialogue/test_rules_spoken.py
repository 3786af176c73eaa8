"""The documented readings of spoken numbers, dates and times (voice_agent.dialogue.understanding.spoken)."""

from __future__ import annotations

from datetime import date, time

import pytest

from voice_agent.dialogue.understanding.spoken import find_phone, parse_birth_date, parse_when, spoken_numbers

MONDAY = date(2026, 11, 23)


@pytest.mark.parametrize(
    ("words", "digits"),
    [
        ("two thirty", "2 30"),
        ("nineteen eighty five", "19 85"),
        ("twenty-third", "23rd"),
        ("the first one", "the 1st one"),
        ("five five five one two", "5 5 5 1 2"),
        ("double five", "5 5"),
        ("two oh five", "2 0 5"),
        ("two thousand and five", "2005"),
        ("two thousand twenty five", "2025"),
        ("eight hundred five five five", "800 5 5 5"),
        ("one hundred and twelve", "112"),
        ("the one with doctor park", "the one with doctor park"),  # a pronoun, not a number
        ("one", "1"),
        ("option one", "option 1"),
        ("at one thirty", "at 1 30"),
        ("oh I see", "oh I see"),
    ],
)
def test_spoken_numbers(words: str, digits: str) -> None:
    assert spoken_numbers(words) == digits


@pytest.mark.parametrize(
    ("today", "said", "expected"),
    [
        (date(2026, 11, 23), "next thursday", date(2026, 12, 3)),  # Monday: the Thursday of next week
        (date(2026, 11, 23), "thursday", date(2026, 11, 26)),  # ... "Thursday" is the coming one
        (date(2026, 11, 26), "thursday", date(2026, 12, 3)),  # on a Thursday, the next one
        (date(2026, 11, 26), "next thursday", date(2026, 12, 3)),
        (date(2026, 11, 27), "next thursday", date(2026, 12, 3)),  # Friday: 6 days away
        (date(2026, 11, 29), "next thursday", date(2026, 12, 3)),  # Sunday: weeks start on Monday
        (date(2026, 11, 23), "thursday after next", date(2026, 12, 10)),
        (date(2026, 11, 23), "tomorrow", date(2026, 11, 24)),
        (date(2026, 11, 23), "the day after tomorrow", date(2026, 11, 25)),
        (date(2026, 11, 23), "on the 23rd", date(2026, 11, 23)),  # today is not in the past
        (date(2026, 11, 24), "on the 23rd", date(2026, 12, 23)),
        (date(2026, 12, 30), "january 2nd", date(2027, 1, 2)),
        (date(2026, 11, 23), "february 29th", date(2028, 2, 29)),
    ],
)
def test_days(today: date, said: str, expected: date) -> None:
    when = parse_when(spoken_numbers(said), today)
    assert (when.date_from, when.date_to) == (expected, expected)


@pytest.mark.parametrize(
    ("said", "not_before"),
    [
        ("at 1", time(13)),
        ("at 6", time(18)),
        ("at 7", time(7)),
        ("at 11", time(11)),
        ("at 12", time(12)),
        ("at 13:00", time(13)),
        ("at 7 pm", time(19)),
        ("at 3 in the morning", time(3)),
        ("at 8 in the evening", time(20)),
        ("at five oclock", time(17)),
        ("quarter to three", time(14, 45)),
        ("quarter past ten", time(10, 15)),
        ("at noon", time(12)),
        ("at 2:30", time(14, 30)),
        ("at 230", time(14, 30)),
        ("at ten fifteen", time(10, 15)),
        ("at two oh five", time(14, 5)),
    ],
)
def test_bare_hours_and_clock_times(said: str, not_before: time) -> None:
    when = parse_when(spoken_numbers(said), MONDAY)
    assert when.not_before == not_before
    assert when.not_after is not None  # a specific time is a 30-minute window


def test_numbers_that_are_not_times() -> None:
    for said in ["in 2 weeks", "for 3 days", "the 3rd", "5 5 5 1 2 3 4", "2 people", "option 2"]:
        when = parse_when(spoken_numbers(said), MONDAY, ordinals_are_days=False)
        assert when.not_before is None and when.not_after is None, said


@pytest.mark.parametrize(
    ("said", "born"),
    [
        ("3-3-85", date(1985, 3, 3)),
        ("3-3-05", date(2005, 3, 3)),
        ("3-3-26", date(2026, 3, 3)),  # earlier this year: the recent century, being in the past
        ("12-31-26", date(1926, 12, 31)),  # 2026-12-31 is in the future
        ("1-1-06", date(2006, 1, 1)),
        ("03031985", date(1985, 3, 3)),
        ("030385", date(1985, 3, 3)),
        ("31121980", date(1980, 12, 31)),  # not a month first: day first
    ],
)
def test_birth_date_centuries_and_keypad(said: str, born: date) -> None:
    assert parse_birth_date(spoken_numbers(said), MONDAY) == (born, True)


def test_birth_dates_must_be_past_and_plausible() -> None:
    assert parse_birth_date("11 24 2026", MONDAY) == (None, True)  # tomorrow
    assert parse_birth_date("11 23 2026", MONDAY) == (date(2026, 11, 23), True)  # born today
    assert parse_birth_date("1 1 1900", MONDAY) == (None, True)  # more than 120 years ago
    assert parse_birth_date("nothing to see", MONDAY) == (None, False)


def test_phone_numbers() -> None:
    assert find_phone("call me at 555-123-4567") == "5551234567"
    assert find_phone("+1 (555) 123 4567") == "15551234567"
    assert find_phone(spoken_numbers("five five five oh one oh one")) == "5550101"
    assert find_phone("at 2 30") is None
    assert find_phone("1" * 20) is None
