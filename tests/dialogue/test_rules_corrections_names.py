"""Callers who correct themselves and names in every shape, through the rules understanding: the last
value said wins, and a name comes back split as its owner would split it. Phrasings here were not the
ones the rules were written from (issue 15's list of what broke with outside callers)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

import pytest

from voice_agent.dialogue.understanding import Expectation, Intent, UnderstandingContext, Understood
from voice_agent.dialogue.understanding.corrections import split_correction
from voice_agent.dialogue.understanding.rules import RulesUnderstanding

NOW = datetime(2027, 3, 3, 9, 0, tzinfo=ZoneInfo("America/Chicago"))  # a Wednesday


def understand(words: str, expecting: Expectation) -> Understood:
    return RulesUnderstanding().parse(words, UnderstandingContext(now=NOW, expecting=expecting))


@pytest.mark.parametrize(
    ("words", "day"),
    [
        ("the 28th, sorry, the 29th", date(2027, 3, 29)),
        ("Tuesday, no wait, Thursday", date(2027, 3, 4)),
        ("on Friday. Actually, make that Monday", date(2027, 3, 8)),
        ("next Tuesday, I mean next Wednesday", date(2027, 3, 10)),
        ("March 12th, scratch that, March 15th", date(2027, 3, 15)),
    ],
)
def test_a_day_corrected_in_the_same_breath_is_the_last_one_said(words: str, day: date) -> None:
    slots = understand(words, Expectation.PREFERENCE).slots
    assert (slots.date_from, slots.date_to) == (day, day), words


def test_a_time_window_corrected_is_the_last_one() -> None:
    slots = understand("morning, actually make that the afternoon", Expectation.PREFERENCE).slots
    assert (slots.time_not_before, slots.time_not_after) == (time(12, 0), time(17, 0))


@pytest.mark.parametrize("words", ["no wait, Friday", "yes, sorry, no, Friday", "Tuesday, no wait, Friday"])
def test_a_new_day_at_the_read_back_is_a_new_day_not_a_yes(words: str) -> None:
    understood = understand(words, Expectation.CONFIRM)
    assert understood.intent is not Intent.AFFIRM
    assert understood.slots.date_from == date(2027, 3, 5), words


def test_a_birth_date_corrected_is_the_last_one() -> None:
    slots = understand("March 3rd 1980, sorry, March 4th 1980", Expectation.BIRTH_DATE).slots
    assert slots.birth_date == date(1980, 3, 4)


@pytest.mark.parametrize("words", ["sorry, what?", "sorry, could you say that again", "I'm sorry?"])
def test_an_apology_that_corrects_nothing_is_still_a_request_to_repeat(words: str) -> None:
    assert understand(words, Expectation.PREFERENCE).intent is Intent.REPEAT


def test_a_correction_never_hides_an_emergency() -> None:
    understood = understand("I can't breathe, sorry, I mean book me for Friday", Expectation.PREFERENCE)
    assert understood.intent is Intent.EMERGENCY


def test_only_words_after_the_last_marker_are_the_correction() -> None:
    assert split_correction("Monday, sorry, Tuesday, no wait, Thursday") == "Thursday"
    assert split_correction("book me for Monday") is None
    assert split_correction("Monday, sorry") is None


@pytest.mark.parametrize(
    ("words", "given", "family"),
    [
        ("Van der Linde, Gretchen", "Gretchen", "Van der Linde"),
        ("Gretchen van der Linde", "Gretchen", "van der Linde"),
        ("de la Cruz, Maria", "Maria", "de la Cruz"),
        ("MacDonald, Ewan", "Ewan", "MacDonald"),
        ("Sean O'Brien", "Sean", "O'Brien"),
        ("It's Minh Anh Nguyen", "Minh Anh", "Nguyen"),
        ("Dr. Mary Jane O'Neil-Smith", "Mary Jane", "O'Neil-Smith"),
        ("Mrs. Okafor, Amara", "Amara", "Okafor"),
        ("Anna, I mean Ana Quispe", "Ana", "Quispe"),
        ("John Parke, P as in Peter, A R K", "John", "Park"),
        ("Siobhan Okon Quo, O K O N K W O", "Siobhan", "Okonkwo"),
        ("Minh Anh N Guyen, N as in Nancy G U Y E N", "Minh Anh", "Nguyen"),
        ("first name Gretchen, last name van der Linde", "Gretchen", "van der Linde"),
    ],
)
def test_names_in_every_order_and_shape(words: str, given: str, family: str) -> None:
    slots = understand(words, Expectation.FULL_NAME).slots
    assert (slots.given_name, slots.family_name) == (given, family), words


@pytest.mark.parametrize(
    ("words", "surname"),
    [
        ("O K O N K W O", "Okonkwo"),
        ("O-K-O-N-K-W-O.", "Okonkwo"),  # as Whisper often writes a spelling
        ("O. K. O. N. K. W. O.", "Okonkwo"),
        ("N G", "Ng"),
        ("O apostrophe B R I E N", "O'Brien"),
        ("H E R N A N D E Z hyphen R U I Z", "Hernandez-Ruiz"),
        ("P as in Peter, A R K", "Park"),
    ],
)
def test_a_spelled_surname_comes_back_as_one_word(words: str, surname: str) -> None:
    slots = understand(words, Expectation.FULL_NAME).slots
    assert slots.given_name == surname and slots.family_name is None, words
