"""Dates as callers say them, understood the same way on every day of the year: "the first available"
is never a date, a bare ordinal is a day only where the words make it one, and a weekday or a day of
the month lands on the right date whatever today is (month ends, year end, leap days, weekends)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voice_agent.dialogue import speech
from voice_agent.dialogue.understanding.base import Expectation, UnderstandingContext, Understood
from voice_agent.dialogue.understanding.rules import RulesUnderstanding

ZONE = ZoneInfo("America/New_York")
RULES = RulesUnderstanding()

#: Days that broke, or could break, date arithmetic: month and year ends, a leap day, the days around
#: both daylight-saving changes, a Friday afternoon and a weekend.
HARD_DAYS = [
    datetime(2026, 12, 3, 15, 0),
    datetime(2026, 12, 30, 9, 0),
    datetime(2026, 12, 31, 16, 30),
    datetime(2027, 1, 31, 11, 0),
    datetime(2027, 2, 28, 10, 0),
    datetime(2028, 2, 29, 10, 0),
    datetime(2027, 3, 13, 14, 0),
    datetime(2027, 3, 14, 9, 0),
    datetime(2027, 11, 6, 10, 0),
    datetime(2026, 12, 4, 16, 30),
    datetime(2026, 12, 5, 12, 0),
    datetime(2026, 12, 6, 12, 0),
    datetime(2027, 4, 30, 17, 45),
]
ANY_DAY = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2031, 12, 31))

SOONEST = [
    "The first available time.",
    "the first available",
    "the first one",
    "the first one you have",
    "the earliest",
    "the earliest you've got",
    "whatever's first",
    "whatever is soonest",
    "the first opening",
    "the first thing you have",
    "next available please",
    "as soon as possible",
    "um, the first available appointment I guess",
]


def parse(text: str, now: datetime, expecting: Expectation = Expectation.PREFERENCE) -> Understood:
    return RULES.parse(text, UnderstandingContext(now=now.replace(tzinfo=ZONE), expecting=expecting))


@pytest.mark.parametrize("now", HARD_DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
@pytest.mark.parametrize("text", SOONEST)
@pytest.mark.parametrize("expecting", [Expectation.PREFERENCE, Expectation.CONFIRM, Expectation.TASK])
def test_the_first_available_is_never_a_date(text: str, now: datetime, expecting: Expectation) -> None:
    slots = parse(text, now, expecting).slots
    assert slots.date_from is None and slots.date_to is None, slots
    assert slots.soonest, slots


@settings(max_examples=150, deadline=None)
@given(now=ANY_DAY, text=st.sampled_from(SOONEST))
def test_the_first_available_is_never_a_date_on_any_day(now: datetime, text: str) -> None:
    slots = parse(text, now).slots
    assert (slots.date_from, slots.date_to, slots.soonest) == (None, None, True)


@settings(max_examples=150, deadline=None)
@given(now=ANY_DAY, text=st.sampled_from(["on the first", "for the 1st", "on the 1st please"]))
def test_on_the_first_is_the_next_first_of_a_month(now: datetime, text: str) -> None:
    slots = parse(text, now).slots
    today = now.date()
    expected = today if today.day == 1 else (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    assert (slots.date_from, slots.date_to) == (expected, expected)


@settings(max_examples=150, deadline=None)
@given(now=ANY_DAY, day=st.integers(min_value=4, max_value=28))
def test_the_nth_is_the_next_such_day(now: datetime, day: int) -> None:
    slots = parse(f"the {speech.ordinal(day)}", now).slots
    assert slots.date_from == slots.date_to
    assert slots.date_from is not None and slots.date_from.day == day
    assert 0 <= (slots.date_from - now.date()).days < 32


@settings(max_examples=150, deadline=None)
@given(now=ANY_DAY, weekday=st.sampled_from(["monday", "tuesday", "wednesday", "thursday", "friday"]))
def test_a_weekday_is_the_coming_one_and_next_weekday_is_in_next_week(now: datetime, weekday: str) -> None:
    number = ["monday", "tuesday", "wednesday", "thursday", "friday"].index(weekday)
    coming = parse(f"on {weekday}", now).slots.date_from
    assert coming is not None and coming.weekday() == number and 1 <= (coming - now.date()).days <= 7
    following = parse(f"next {weekday}", now).slots.date_from
    today = now.date()
    next_monday = today - timedelta(days=today.weekday()) + timedelta(days=7)
    assert following == next_monday + timedelta(days=number)


@pytest.mark.parametrize("now", HARD_DAYS, ids=lambda d: d.strftime("%Y-%m-%d"))
def test_a_weekday_and_a_day_of_the_month_are_one_date(now: datetime) -> None:
    slots = parse("Friday the first", now).slots
    assert slots.date_from == slots.date_to
    assert slots.date_from is not None and slots.date_from >= now.date()
    assert (slots.date_from.weekday(), slots.date_from.day) == (4, 1)
    named = parse("Friday, January 1st", now).slots
    assert named.date_from == named.date_to and named.date_from is not None
    assert (named.date_from.month, named.date_from.day) == (1, 1)


def test_a_bare_ordinal_with_a_month_or_a_preposition_is_a_day() -> None:
    now = datetime(2026, 12, 3, 15, 0)
    assert parse("the 1st of January", now).slots.date_from == date(2027, 1, 1)
    assert parse("the second", now).slots.date_from is None  # picks, or is unclear: never Jan 2nd
    assert parse("for the second", now).slots.date_from == date(2027, 1, 2)


def test_first_thing_is_the_morning_but_the_first_thing_you_have_is_the_soonest() -> None:
    now = datetime(2026, 12, 3, 15, 0)
    morning = parse("first thing tomorrow", now).slots
    assert morning.time_not_after == time(10, 0) and morning.date_from == date(2026, 12, 4)
    soonest = parse("the first thing you have", now).slots
    assert soonest.time_not_after is None and soonest.soonest


def test_days_are_said_without_on_for_today_and_tomorrow_and_with_the_month_across_a_month() -> None:
    today = date(2026, 12, 30)
    assert speech.on_day(today, today=today) == "today"
    assert speech.on_day(date(2026, 12, 31), today=today) == "tomorrow"
    assert speech.on_day(date(2027, 1, 1), today=today) == "on Friday, January 1st"
    assert speech.day(date(2027, 1, 4), today=today) == "Monday, January 4th"
    assert speech.day(date(2026, 12, 7), today=date(2026, 12, 3)) == "Monday the 7th"
    moment = datetime(2026, 12, 31, 9, 0, tzinfo=ZONE)
    assert speech.on_when(moment, ZONE, today=today) == "tomorrow at 9 AM"
