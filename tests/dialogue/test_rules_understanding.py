"""The rules backend on realistic speech-to-text output: what a caller says, after which question, and
what the policy receives. Whisper-style variants (no punctuation, lower case, numbers as words, fillers)
are deliberate. ``now`` is Monday 23 November 2026, 10:00 in New York."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any
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
from voice_agent.dialogue.understanding.rules import RulesUnderstanding

NY = ZoneInfo("America/New_York")
NOW = datetime(2026, 11, 23, 10, 0, tzinfo=NY)  # a Monday
PRACTITIONERS = (
    DirectoryEntry("sched-okafor", "Dr. Amara Okafor"),
    DirectoryEntry("sched-park", "Dr. Daniel Park"),
    DirectoryEntry("sched-hernandez-ruiz", "Dr. Sofía Hernández-Ruiz"),
    DirectoryEntry("sched-oconnell", "Dr. Liam O'Connell", aliases=("doctor liam",)),
)
VISIT_TYPES = (
    VisitTypeEntry("new-patient", "New patient visit"),
    VisitTypeEntry("follow-up", "Follow-up visit"),
    VisitTypeEntry("annual-physical", "Annual physical"),
    VisitTypeEntry("vaccination", "Vaccination"),
    VisitTypeEntry("telehealth", "Telehealth visit"),
)
# Tuesday 09:00 with Okafor, Tuesday 10:30 with Park, Friday 14:30 with Park.
OFFERED = Offered(
    starts=(
        datetime(2026, 11, 24, 9, 0, tzinfo=NY),
        datetime(2026, 11, 24, 10, 30, tzinfo=NY),
        datetime(2026, 11, 27, 14, 30, tzinfo=NY),
    ),
    practitioners=("sched-okafor", "sched-park", "sched-park"),
)
RULES = RulesUnderstanding()

E = Expectation
I = Intent  # noqa: E741 - a table reads better with a one-letter alias
HIGH, MID, LOW = "high", "mid", "low"


def context(expecting: Expectation, offered: Offered | None = None) -> UnderstandingContext:
    if offered is None:
        offered = OFFERED if expecting in (E.CHOOSE_SLOT, E.CHOOSE_APPOINTMENT) else Offered()
    return UnderstandingContext(
        now=NOW, expecting=expecting, practitioners=PRACTITIONERS, visit_types=VISIT_TYPES, offered=offered
    )


def check(answer: Understood, intent: Intent, slots: dict[str, Any], confidence: str | None) -> None:
    assert answer.source == "rules"
    assert answer.intent is intent, answer
    got = answer.slots.model_dump()
    for name, value in slots.items():
        assert got[name] == value, (name, answer)
    if confidence == HIGH:
        assert answer.confidence >= 0.85, answer
    elif confidence == MID:
        assert 0.6 <= answer.confidence < 0.85, answer
    elif confidence == LOW:
        assert answer.confidence < 0.6, answer


Case = tuple[Expectation, str, Intent, dict[str, Any], str | None]


def d(day: int, month: int = 11, year: int = 2026) -> date:
    return date(year, month, day)


def t(hour: int, minute: int = 0) -> time:
    return time(hour, minute)


# --------------------------------------------------------------------------------------------------
# What the caller wants (after "How can I help you today?")

TASKS: list[Case] = [
    (E.TASK, "I'd like to make an appointment", I.BOOK, {}, HIGH),
    (E.TASK, "hi um I need to book an appointment please", I.BOOK, {}, HIGH),
    (E.TASK, "Can I see Dr. Park?", I.BOOK, {"practitioner": "sched-park"}, HIGH),
    (E.TASK, "schedule a physical", I.BOOK, {"visit_type": "annual-physical"}, HIGH),
    (E.TASK, "I'd like to come in", I.BOOK, {}, HIGH),
    (E.TASK, "appointment please", I.BOOK, {}, HIGH),
    (E.TASK, "i want to get a flu shot", I.BOOK, {"visit_type": "vaccination"}, HIGH),
    (
        E.TASK,
        "I need to come in for a follow up with doctor okafor",
        I.BOOK,
        {"practitioner": "sched-okafor"},
        HIGH,
    ),
    (
        E.TASK,
        "a checkup with Dr Park",
        I.BOOK,
        {"visit_type": "annual-physical", "practitioner": "sched-park"},
        MID,
    ),
    (E.TASK, "I'd like to look at an appointment", I.BOOK, {}, LOW),  # Whisper for "book an"
    (E.TASK, "I need to cancel my appointment", I.CANCEL, {}, HIGH),
    (E.TASK, "yeah I'd like to cancel", I.CANCEL, {}, HIGH),
    (E.TASK, "can you cancel my appointment on friday", I.CANCEL, {"date_from": d(27)}, HIGH),
    (E.TASK, "I can't make it on Tuesday", I.CANCEL, {"date_from": d(24)}, MID),
    (E.TASK, "what's your cancellation policy", I.UNKNOWN, {}, LOW),
    (E.TASK, "I want to move my appointment", I.RESCHEDULE, {}, HIGH),
    (E.TASK, "can I change the time", I.RESCHEDULE, {}, HIGH),
    (E.TASK, "I need to reschedule", I.RESCHEDULE, {}, HIGH),
    (E.TASK, "cancel my appointment and book a new one", I.RESCHEDULE, {}, HIGH),
    (
        E.TASK,
        "I can't make it on Tuesday can we do Wednesday instead",
        I.RESCHEDULE,
        {"date_from": d(25)},
        MID,
    ),
    (
        E.TASK,
        "push my appointment back to next week",
        I.RESCHEDULE,
        {"date_from": d(30), "date_to": d(4, 12)},
        HIGH,
    ),
    (E.TASK, "when is my next appointment", I.LIST_APPOINTMENTS, {}, HIGH),
    (E.TASK, "do I have anything booked", I.LIST_APPOINTMENTS, {}, HIGH),
    (E.TASK, "what time is my appointment", I.LIST_APPOINTMENTS, {}, HIGH),
    (E.TASK, "can you look up my appointments", I.LIST_APPOINTMENTS, {}, HIGH),
    (
        E.TASK,
        "what do you have next week",
        I.ASK_AVAILABILITY,
        {"date_from": d(30), "date_to": d(4, 12)},
        HIGH,
    ),
    (
        E.TASK,
        "Is Dr. Okafor free on Friday?",
        I.ASK_AVAILABILITY,
        {"practitioner": "sched-okafor", "date_from": d(27), "date_to": d(27)},
        HIGH,
    ),
    (E.TASK, "what's the earliest you have", I.ASK_AVAILABILITY, {"date_from": None}, HIGH),
    (E.TASK, "do you have anything this afternoon", I.ASK_AVAILABILITY, {"time_not_before": t(12)}, HIGH),
    (
        E.TASK,
        "first available with Dr Hernandez",
        I.ASK_AVAILABILITY,
        {"practitioner": "sched-hernandez-ruiz"},
        HIGH,
    ),
    (E.TASK, "speak to a person", I.HUMAN, {}, HIGH),
    (E.TASK, "front desk please", I.HUMAN, {}, HIGH),
    (E.TASK, "operator", I.HUMAN, {}, HIGH),
    (E.TASK, "agent", I.HUMAN, {}, HIGH),
    (E.TASK, "can I get a representative", I.HUMAN, {}, HIGH),
    (E.TASK, "I want to talk to a real person", I.HUMAN, {}, HIGH),
    (E.TASK, "the agent said I could reschedule", I.RESCHEDULE, {}, HIGH),  # "agent" is not a request
    (E.TASK, "are you a robot", I.UNKNOWN, {}, LOW),
    (E.TASK, "sorry can you repeat that", I.REPEAT, {}, HIGH),
    (E.TASK, "what", I.REPEAT, {}, HIGH),
    (E.TASK, "bye", I.GOODBYE, {}, HIGH),
    (E.TASK, "it's about my appointment", I.UNKNOWN, {}, LOW),
    (E.TASK, "hello", I.UNKNOWN, {}, LOW),
    (E.TASK, "asdf qwerty", I.UNKNOWN, {}, LOW),
    (E.TASK, "I have an appointment tomorrow", I.PROVIDE_INFO, {"date_from": d(24)}, LOW),
    (E.TASK, "as soon as possible", I.BOOK, {"date_from": None}, LOW),
    (E.TASK, "where do I park", I.UNKNOWN, {"practitioner": None}, LOW),  # "Park" needs a "doctor"
    (E.TASK, "can I see Park", I.BOOK, {"practitioner": "sched-park"}, MID),
    (E.TASK, "i'd like to see doctor okafour", I.BOOK, {"practitioner": "sched-okafor"}, MID),
    (E.PREFERENCE, "actually I want to cancel my appointment instead", I.CANCEL, {}, HIGH),
    (E.CONFIRM, "no, not that", I.DENY, {}, HIGH),
]

# --------------------------------------------------------------------------------------------------
# Answers to the agent's yes/no and closing questions

ANSWERS: list[Case] = [
    (E.CONFIRM, "yes", I.AFFIRM, {}, HIGH),
    (E.CONFIRM, "Yeah, that's right.", I.AFFIRM, {}, HIGH),
    (E.CONFIRM, "yep book it", I.AFFIRM, {}, HIGH),
    (E.CONFIRM, "sure", I.AFFIRM, {}, HIGH),
    (E.CONFIRM, "correct", I.AFFIRM, {}, HIGH),
    (E.CONFIRM, "please do", I.AFFIRM, {}, HIGH),
    (E.CONFIRM, "uh huh", I.AFFIRM, {}, HIGH),
    (E.CONFIRM, "mm-hmm", I.AFFIRM, {}, HIGH),
    (E.CONFIRM, "sounds good thank you", I.AFFIRM, {}, HIGH),
    (E.CONFIRM, "no", I.DENY, {}, HIGH),
    (E.CONFIRM, "nope", I.DENY, {}, HIGH),
    (E.CONFIRM, "not really", I.DENY, {}, HIGH),
    (E.CONFIRM, "that doesn't work", I.DENY, {}, HIGH),
    (E.CONFIRM, "no make it friday instead", I.DENY, {"date_from": d(27), "date_to": d(27)}, HIGH),
    (E.CONFIRM, "no that's all", I.NOTHING_ELSE, {}, HIGH),
    (E.CONFIRM, "yes no wait", I.UNKNOWN, {}, LOW),
    (E.ANYTHING_ELSE, "no that's all", I.NOTHING_ELSE, {}, HIGH),
    (E.ANYTHING_ELSE, "nothing else thanks", I.NOTHING_ELSE, {}, HIGH),
    (E.ANYTHING_ELSE, "no", I.NOTHING_ELSE, {}, HIGH),
    (E.ANYTHING_ELSE, "No thank you.", I.NOTHING_ELSE, {}, HIGH),
    (E.ANYTHING_ELSE, "I'm all set", I.NOTHING_ELSE, {}, HIGH),
    (E.ANYTHING_ELSE, "nope that's it bye", I.GOODBYE, {}, HIGH),
    (E.ANYTHING_ELSE, "have a good day", I.GOODBYE, {}, HIGH),
    (E.ANYTHING_ELSE, "yes I also need to cancel another appointment", I.CANCEL, {}, HIGH),
    (E.ANYTHING_ELSE, "yes", I.AFFIRM, {}, HIGH),
    (E.TASK, "no that's all", I.NOTHING_ELSE, {}, None),
    (E.CALLBACK, "yes", I.AFFIRM, {}, HIGH),
    (E.CALLBACK, "no thanks", I.DENY, {}, HIGH),
    (E.CALLBACK, "yes call me at 555-123-4567", I.AFFIRM, {"phone": "5551234567"}, HIGH),
    (
        E.CALLBACK,
        "five five five one two three four five six seven",
        I.PROVIDE_INFO,
        {"phone": "5551234567"},
        HIGH,
    ),
    (E.CALLBACK, "my number is (555) 987 6543", I.AFFIRM, {"phone": "5559876543"}, HIGH),
    (
        E.CALLBACK,
        "eight hundred five five five one two one two",
        I.PROVIDE_INFO,
        {"phone": "8005551212"},
        HIGH,
    ),
    (E.CALLBACK, "double five five one two three four", I.PROVIDE_INFO, {"phone": "5551234"}, HIGH),
    (E.CALLBACK, "the number I'm calling from is fine", I.AFFIRM, {"phone": None}, HIGH),
    (E.CALLBACK, "I'd rather talk to someone now", I.AFFIRM, {}, MID),
    (E.TASK, "you can reach me at 617 555 0199", I.PROVIDE_INFO, {"phone": "6175550199"}, LOW),
    (E.TASK, "book me for 2 weeks from now", I.BOOK, {"phone": None}, HIGH),
]

# --------------------------------------------------------------------------------------------------
# Picking among offered slots: Tue 9:00 Okafor, Tue 10:30 Park, Fri 14:30 Park

CHOICES: list[Case] = [
    (E.CHOOSE_SLOT, "the first one", I.CHOOSE_OPTION, {"option": 1}, HIGH),
    (E.CHOOSE_SLOT, "second", I.CHOOSE_OPTION, {"option": 2}, HIGH),
    (E.CHOOSE_SLOT, "um the uh third one please", I.CHOOSE_OPTION, {"option": 3}, HIGH),
    (E.CHOOSE_SLOT, "number two", I.CHOOSE_OPTION, {"option": 2}, HIGH),
    (E.CHOOSE_SLOT, "two", I.CHOOSE_OPTION, {"option": 2}, HIGH),
    (E.CHOOSE_SLOT, "option 3", I.CHOOSE_OPTION, {"option": 3}, HIGH),
    (E.CHOOSE_SLOT, "I'll take the second", I.CHOOSE_OPTION, {"option": 2}, HIGH),
    (E.CHOOSE_SLOT, "the last one", I.CHOOSE_OPTION, {"option": 3}, HIGH),
    (E.CHOOSE_SLOT, "the 10:30 one", I.CHOOSE_OPTION, {"option": 2}, HIGH),
    (E.CHOOSE_SLOT, "ten thirty", I.CHOOSE_OPTION, {"option": 2}, HIGH),
    (E.CHOOSE_SLOT, "the 9 a.m.", I.CHOOSE_OPTION, {"option": 1}, HIGH),
    (E.CHOOSE_SLOT, "nine o'clock", I.CHOOSE_OPTION, {"option": 1}, HIGH),
    (E.CHOOSE_SLOT, "the 2:30 on friday", I.CHOOSE_OPTION, {"option": 3}, HIGH),
    (E.CHOOSE_SLOT, "the friday one", I.CHOOSE_OPTION, {"option": 3}, HIGH),
    (E.CHOOSE_SLOT, "the one with Dr. Okafor", I.CHOOSE_OPTION, {"option": 1}, HIGH),
    (E.CHOOSE_SLOT, "the earlier one", I.CHOOSE_OPTION, {"option": 1}, HIGH),
    (E.CHOOSE_SLOT, "tuesday at 10:30", I.CHOOSE_OPTION, {"option": 2}, HIGH),
    (E.CHOOSE_SLOT, "the one with Dr. Park", I.CHOOSE_OPTION, {"option": None}, LOW),  # two of them
    (E.CHOOSE_SLOT, "the tuesday one", I.CHOOSE_OPTION, {"option": None}, LOW),
    (E.CHOOSE_SLOT, "the fourth one", I.CHOOSE_OPTION, {"option": None}, LOW),
    (E.CHOOSE_SLOT, "neither", I.DENY, {}, HIGH),
    (E.CHOOSE_SLOT, "none of those work for me", I.DENY, {}, HIGH),
    (E.CHOOSE_SLOT, "not the first one", I.DENY, {"option": None}, MID),
    (E.CHOOSE_SLOT, "yes", I.AFFIRM, {"option": None}, LOW),  # yes to which?
    (E.CHOOSE_SLOT, "do you have anything next week instead", I.ASK_AVAILABILITY, {"date_from": d(30)}, HIGH),
    (E.CHOOSE_SLOT, "what about Thursday", I.PROVIDE_INFO, {"date_from": d(26)}, LOW),
    (E.CHOOSE_SLOT, "sorry can you read those again", I.REPEAT, {}, HIGH),
    (E.CHOOSE_SLOT, "hold on a second", I.UNKNOWN, {"option": None}, LOW),
    (E.CHOOSE_APPOINTMENT, "the second one", I.CHOOSE_OPTION, {"option": 2}, HIGH),
    (E.CHOOSE_APPOINTMENT, "the one on friday", I.CHOOSE_OPTION, {"option": 3}, HIGH),
]

# --------------------------------------------------------------------------------------------------
# Preferences: when, with whom, what kind of visit (after "When would you like to come in?")

PREFERENCES: list[Case] = [
    (E.PREFERENCE, "tomorrow", I.PROVIDE_INFO, {"date_from": d(24), "date_to": d(24)}, HIGH),
    (E.PREFERENCE, "today if possible", I.PROVIDE_INFO, {"date_from": d(23), "date_to": d(23)}, HIGH),
    (E.PREFERENCE, "next Thursday", I.PROVIDE_INFO, {"date_from": d(3, 12), "date_to": d(3, 12)}, HIGH),
    (E.PREFERENCE, "Thursday", I.PROVIDE_INFO, {"date_from": d(26), "date_to": d(26)}, HIGH),
    (E.PREFERENCE, "this thursday", I.PROVIDE_INFO, {"date_from": d(26), "date_to": d(26)}, HIGH),
    (E.PREFERENCE, "monday", I.PROVIDE_INFO, {"date_from": d(30), "date_to": d(30)}, HIGH),  # today excluded
    (E.PREFERENCE, "tuesday next week", I.PROVIDE_INFO, {"date_from": d(1, 12), "date_to": d(1, 12)}, HIGH),
    (E.PREFERENCE, "on the 3rd", I.PROVIDE_INFO, {"date_from": d(3, 12), "date_to": d(3, 12)}, HIGH),
    (E.PREFERENCE, "the twenty third", I.PROVIDE_INFO, {"date_from": d(23), "date_to": d(23)}, HIGH),
    (E.PREFERENCE, "December 9th", I.PROVIDE_INFO, {"date_from": d(9, 12), "date_to": d(9, 12)}, HIGH),
    (E.PREFERENCE, "the 9th of december", I.PROVIDE_INFO, {"date_from": d(9, 12), "date_to": d(9, 12)}, HIGH),
    (E.PREFERENCE, "January 5", I.PROVIDE_INFO, {"date_from": d(5, 1, 2027)}, HIGH),
    (E.PREFERENCE, "12/9", I.PROVIDE_INFO, {"date_from": d(9, 12)}, HIGH),
    (E.PREFERENCE, "next week", I.PROVIDE_INFO, {"date_from": d(30), "date_to": d(4, 12)}, HIGH),
    (E.PREFERENCE, "this week", I.PROVIDE_INFO, {"date_from": d(23), "date_to": d(27)}, HIGH),
    (E.PREFERENCE, "in two weeks", I.PROVIDE_INFO, {"date_from": d(7, 12), "date_to": d(11, 12)}, HIGH),
    (
        E.PREFERENCE,
        "the week after next",
        I.PROVIDE_INFO,
        {"date_from": d(7, 12), "date_to": d(11, 12)},
        HIGH,
    ),
    (E.PREFERENCE, "in 3 days", I.PROVIDE_INFO, {"date_from": d(26), "date_to": d(26)}, HIGH),
    (E.PREFERENCE, "next month", I.PROVIDE_INFO, {"date_from": d(1, 12), "date_to": d(31, 12)}, HIGH),
    (E.PREFERENCE, "after the 3rd", I.PROVIDE_INFO, {"date_from": d(4, 12), "date_to": None}, HIGH),
    (E.PREFERENCE, "before friday", I.PROVIDE_INFO, {"date_from": None, "date_to": d(26)}, HIGH),
    (E.PREFERENCE, "morning", I.PROVIDE_INFO, {"time_not_before": None, "time_not_after": t(12)}, HIGH),
    (E.PREFERENCE, "afternoon", I.PROVIDE_INFO, {"time_not_before": t(12), "time_not_after": t(17)}, HIGH),
    (E.PREFERENCE, "evenings", I.PROVIDE_INFO, {"time_not_before": t(17), "time_not_after": None}, HIGH),
    (
        E.PREFERENCE,
        "late afternoon",
        I.PROVIDE_INFO,
        {"time_not_before": t(15), "time_not_after": t(17)},
        HIGH,
    ),
    (E.PREFERENCE, "something early", I.PROVIDE_INFO, {"time_not_after": t(10)}, HIGH),
    (E.PREFERENCE, "early next week", I.PROVIDE_INFO, {"date_from": d(30), "time_not_after": None}, HIGH),
    (
        E.PREFERENCE,
        "any time after 4",
        I.PROVIDE_INFO,
        {"time_not_before": t(16), "time_not_after": None},
        HIGH,
    ),
    (E.PREFERENCE, "after 10am", I.PROVIDE_INFO, {"time_not_before": t(10)}, HIGH),
    (E.PREFERENCE, "before 10", I.PROVIDE_INFO, {"time_not_before": None, "time_not_after": t(10)}, HIGH),
    (
        E.PREFERENCE,
        "at two thirty",
        I.PROVIDE_INFO,
        {"time_not_before": t(14, 30), "time_not_after": t(15)},
        HIGH,
    ),
    (
        E.PREFERENCE,
        "tomorrow at 2:30",
        I.PROVIDE_INFO,
        {"date_from": d(24), "date_to": d(24), "time_not_before": t(14, 30), "time_not_after": t(15)},
        HIGH,
    ),
    (E.PREFERENCE, "at 230", I.PROVIDE_INFO, {"time_not_before": t(14, 30)}, HIGH),
    (E.PREFERENCE, "2:30 p.m.", I.PROVIDE_INFO, {"time_not_before": t(14, 30)}, HIGH),
    (
        E.PREFERENCE,
        "around 10",
        I.PROVIDE_INFO,
        {"time_not_before": t(9, 30), "time_not_after": t(10, 30)},
        HIGH,
    ),
    (
        E.PREFERENCE,
        "between 2 and 4",
        I.PROVIDE_INFO,
        {"time_not_before": t(14), "time_not_after": t(16)},
        HIGH,
    ),
    (
        E.PREFERENCE,
        "from nine to eleven",
        I.PROVIDE_INFO,
        {"time_not_before": t(9), "time_not_after": t(11)},
        HIGH,
    ),
    (E.PREFERENCE, "half past two", I.PROVIDE_INFO, {"time_not_before": t(14, 30)}, HIGH),
    (
        E.PREFERENCE,
        "evening at 7",
        I.PROVIDE_INFO,
        {"time_not_before": t(19), "time_not_after": t(19, 30)},
        HIGH,
    ),
    (E.PREFERENCE, "at 7", I.PROVIDE_INFO, {"time_not_before": t(7)}, HIGH),  # bare 7-11 is morning
    (E.PREFERENCE, "at 12", I.PROVIDE_INFO, {"time_not_before": t(12)}, HIGH),
    (E.PREFERENCE, "tuesday morning", I.PROVIDE_INFO, {"date_from": d(24), "time_not_after": t(12)}, HIGH),
    (E.PREFERENCE, "first available", I.PROVIDE_INFO, {"date_from": None, "date_to": None}, HIGH),
    (E.PREFERENCE, "as soon as possible", I.PROVIDE_INFO, {"date_from": None}, HIGH),
    (E.PREFERENCE, "it doesn't matter", I.PROVIDE_INFO, {}, HIGH),
    (E.PREFERENCE, "with Dr. Okafor", I.PROVIDE_INFO, {"practitioner": "sched-okafor"}, HIGH),
    (E.PREFERENCE, "Okafor", I.PROVIDE_INFO, {"practitioner": "sched-okafor"}, HIGH),
    (E.PREFERENCE, "doctor park", I.PROVIDE_INFO, {"practitioner": "sched-park"}, HIGH),
    (
        E.PREFERENCE,
        "doctor parks on friday",
        I.PROVIDE_INFO,
        {"practitioner": "sched-park", "date_from": d(27)},
        HIGH,
    ),
    (E.PREFERENCE, "Dr. Hernandez", I.PROVIDE_INFO, {"practitioner": "sched-hernandez-ruiz"}, HIGH),
    (E.PREFERENCE, "doctor hernandez ruiz", I.PROVIDE_INFO, {"practitioner": "sched-hernandez-ruiz"}, HIGH),
    (E.PREFERENCE, "Sofia", I.PROVIDE_INFO, {"practitioner": "sched-hernandez-ruiz"}, HIGH),
    (E.PREFERENCE, "SOFÍA HERNÁNDEZ", I.PROVIDE_INFO, {"practitioner": "sched-hernandez-ruiz"}, HIGH),
    (E.PREFERENCE, "O'Connell", I.PROVIDE_INFO, {"practitioner": "sched-oconnell"}, HIGH),
    (E.PREFERENCE, "o connell", I.PROVIDE_INFO, {"practitioner": "sched-oconnell"}, HIGH),
    (E.PREFERENCE, "oconnell", I.PROVIDE_INFO, {"practitioner": "sched-oconnell"}, HIGH),
    (E.PREFERENCE, "doctor liam", I.PROVIDE_INFO, {"practitioner": "sched-oconnell"}, HIGH),  # alias
    (E.PREFERENCE, "Sophia", I.PROVIDE_INFO, {"practitioner": "sched-hernandez-ruiz"}, MID),  # one slip
    (E.PREFERENCE, "doctor o'connel", I.PROVIDE_INFO, {"practitioner": "sched-oconnell"}, MID),
    (E.PREFERENCE, "Dr. Smith", I.PROVIDE_INFO, {"practitioner": None}, LOW),  # not at this clinic
    (E.PREFERENCE, "a physical", I.PROVIDE_INFO, {"visit_type": "annual-physical"}, HIGH),
    (E.PREFERENCE, "check-up", I.PROVIDE_INFO, {"visit_type": "annual-physical"}, HIGH),
    (E.PREFERENCE, "checkup", I.PROVIDE_INFO, {"visit_type": "annual-physical"}, HIGH),
    (E.PREFERENCE, "a follow up", I.PROVIDE_INFO, {"visit_type": "follow-up"}, HIGH),
    (E.PREFERENCE, "flu shot", I.PROVIDE_INFO, {"visit_type": "vaccination"}, HIGH),
    (E.PREFERENCE, "my covid vaccine", I.PROVIDE_INFO, {"visit_type": "vaccination"}, HIGH),
    (E.PREFERENCE, "a video visit", I.PROVIDE_INFO, {"visit_type": "telehealth"}, HIGH),
    (E.PREFERENCE, "can it be virtual", I.PROVIDE_INFO, {"visit_type": "telehealth"}, HIGH),
    (E.PREFERENCE, "telehealth", I.PROVIDE_INFO, {"visit_type": "telehealth"}, HIGH),
    (E.PREFERENCE, "a phone visit", I.PROVIDE_INFO, {"visit_type": "telehealth"}, HIGH),
    (E.PREFERENCE, "I'm a new patient", I.PROVIDE_INFO, {"visit_type": "new-patient"}, HIGH),
    (E.PREFERENCE, "it's my first visit", I.PROVIDE_INFO, {"visit_type": "new-patient"}, HIGH),
    (E.PREFERENCE, "a new patient physical", I.PROVIDE_INFO, {"visit_type": None}, LOW),  # two types
    (
        E.PREFERENCE,
        "book me with Dr Park on Friday",
        I.PROVIDE_INFO,
        {"practitioner": "sched-park", "date_from": d(27)},
        HIGH,
    ),
    (
        E.TASK,
        "um I'd like to uh book a flu shot with doctor parks next thursday afternoon",
        I.BOOK,
        {
            "visit_type": "vaccination",
            "practitioner": "sched-park",
            "date_from": d(3, 12),
            "date_to": d(3, 12),
            "time_not_before": t(12),
            "time_not_after": t(17),
        },
        HIGH,
    ),
    (
        E.TASK,
        "Is Dr Park available any time after 4 next week",
        I.ASK_AVAILABILITY,
        {"practitioner": "sched-park", "date_from": d(30), "date_to": d(4, 12), "time_not_before": t(16)},
        HIGH,
    ),
    (E.TASK, "this is Daniel I want to book a checkup", I.BOOK, {"practitioner": None}, HIGH),
]

# --------------------------------------------------------------------------------------------------
# Names (after "Can I have your full name?") and birth dates (after "And your date of birth?")

NAMES: list[Case] = [
    (
        E.FULL_NAME,
        "my name is Mary-Jane Smith-Jones",
        I.PROVIDE_INFO,
        {"given_name": "Mary-Jane", "family_name": "Smith-Jones"},
        HIGH,
    ),
    (
        E.FULL_NAME,
        "it's Siobhan O'Brien",
        I.PROVIDE_INFO,
        {"given_name": "Siobhan", "family_name": "O'Brien"},
        HIGH,
    ),
    (
        E.FULL_NAME,
        "it\u2019s Siobhan O\u2019Brien",  # Whisper's typographic apostrophes
        I.PROVIDE_INFO,
        {"given_name": "Siobhan", "family_name": "O'Brien"},
        HIGH,
    ),
    (
        E.FULL_NAME,
        "Siobhan O Brien",
        I.PROVIDE_INFO,
        {"given_name": "Siobhan", "family_name": "O Brien"},
        HIGH,
    ),
    (E.FULL_NAME, "José Muñoz", I.PROVIDE_INFO, {"given_name": "José", "family_name": "Muñoz"}, HIGH),
    (
        E.FULL_NAME,
        "Anna Maria Kowalski",
        I.PROVIDE_INFO,
        {"given_name": "Anna Maria", "family_name": "Kowalski"},
        HIGH,
    ),
    (E.FULL_NAME, "Al Ng", I.PROVIDE_INFO, {"given_name": "Al", "family_name": "Ng"}, HIGH),
    (E.FULL_NAME, "this is john smith", I.PROVIDE_INFO, {"given_name": "John", "family_name": "Smith"}, HIGH),
    (E.FULL_NAME, "smith, john", I.PROVIDE_INFO, {"given_name": "John", "family_name": "Smith"}, HIGH),
    (
        E.FULL_NAME,
        "Mary Jane Smith Jones",
        I.PROVIDE_INFO,
        {"given_name": "Mary Jane Smith", "family_name": "Jones"},
        HIGH,
    ),
    (
        E.FULL_NAME,
        "José de la Cruz",
        I.PROVIDE_INFO,
        {"given_name": "José", "family_name": "de la Cruz"},
        HIGH,
    ),
    (
        E.FULL_NAME,
        "yeah it's uh John Smith",
        I.PROVIDE_INFO,
        {"given_name": "John", "family_name": "Smith"},
        HIGH,
    ),
    (E.FULL_NAME, "JOHN SMITH", I.PROVIDE_INFO, {"given_name": "John", "family_name": "Smith"}, HIGH),
    (
        E.FULL_NAME,
        "John Smith, thank you",
        I.PROVIDE_INFO,
        {"given_name": "John", "family_name": "Smith"},
        HIGH,
    ),
    (
        E.FULL_NAME,
        "first name John last name Smith",
        I.PROVIDE_INFO,
        {"given_name": "John", "family_name": "Smith"},
        HIGH,
    ),
    (
        E.FULL_NAME,
        "my last name is Smith and my first name is John",
        I.PROVIDE_INFO,
        {"given_name": "John", "family_name": "Smith"},
        HIGH,
    ),
    (E.FULL_NAME, "J O H N Smith", I.PROVIDE_INFO, {"given_name": "John", "family_name": "Smith"}, HIGH),
    (
        E.FULL_NAME,
        "John Smith born March 3rd 1985",
        I.PROVIDE_INFO,
        {"given_name": "John", "family_name": "Smith", "birth_date": d(3, 3, 1985)},
        HIGH,
    ),
    (
        E.FULL_NAME,
        "my name is Daniel Park",
        I.PROVIDE_INFO,
        {"given_name": "Daniel", "family_name": "Park", "practitioner": None},
        HIGH,
    ),
    (
        E.FULL_NAME,
        "John Smith calling about my appointment",
        I.PROVIDE_INFO,
        {"given_name": "John", "family_name": "Smith"},
        MID,
    ),
    (E.FULL_NAME, "Smith", I.PROVIDE_INFO, {"given_name": "Smith", "family_name": None}, LOW),
    (E.FULL_NAME, "sorry what", I.REPEAT, {}, HIGH),
    (E.FULL_NAME, "speak to someone", I.HUMAN, {}, HIGH),
    (E.FULL_NAME, "I just want to cancel my appointment", I.CANCEL, {"given_name": None}, None),
    (E.FULL_NAME, "why do you need that", I.UNKNOWN, {"given_name": None}, LOW),
    (E.FULL_NAME, "yes", I.AFFIRM, {"given_name": None}, LOW),
]

BIRTH_DATES: list[Case] = [
    (E.BIRTH_DATE, "March 3rd 1985", I.PROVIDE_INFO, {"birth_date": d(3, 3, 1985)}, HIGH),
    (E.BIRTH_DATE, "March 3rd, 1985.", I.PROVIDE_INFO, {"birth_date": d(3, 3, 1985)}, HIGH),
    (E.BIRTH_DATE, "3rd of March 1985", I.PROVIDE_INFO, {"birth_date": d(3, 3, 1985)}, HIGH),
    (
        E.BIRTH_DATE,
        "the third of march nineteen eighty five",
        I.PROVIDE_INFO,
        {"birth_date": d(3, 3, 1985)},
        HIGH,
    ),
    (E.BIRTH_DATE, "03/03/1985", I.PROVIDE_INFO, {"birth_date": d(3, 3, 1985)}, HIGH),
    (E.BIRTH_DATE, "3-3-85", I.PROVIDE_INFO, {"birth_date": d(3, 3, 1985)}, HIGH),
    (
        E.BIRTH_DATE,
        "zero three zero three nineteen eighty five",
        I.PROVIDE_INFO,
        {"birth_date": d(3, 3, 1985)},
        HIGH,
    ),
    (E.BIRTH_DATE, "03031985", I.PROVIDE_INFO, {"birth_date": d(3, 3, 1985)}, HIGH),
    (E.BIRTH_DATE, "3 3 1985", I.PROVIDE_INFO, {"birth_date": d(3, 3, 1985)}, HIGH),
    (E.BIRTH_DATE, "1985-03-03", I.PROVIDE_INFO, {"birth_date": d(3, 3, 1985)}, HIGH),
    (E.BIRTH_DATE, "February 29 1988", I.PROVIDE_INFO, {"birth_date": d(29, 2, 1988)}, HIGH),
    (E.BIRTH_DATE, "it's the 4th of July 1976", I.PROVIDE_INFO, {"birth_date": d(4, 7, 1976)}, HIGH),
    (
        E.BIRTH_DATE,
        "my date of birth is 04/05/1990",
        I.PROVIDE_INFO,
        {"birth_date": d(5, 4, 1990)},
        HIGH,
    ),  # US
    (E.BIRTH_DATE, "31/12/1980", I.PROVIDE_INFO, {"birth_date": d(31, 12, 1980)}, HIGH),  # cannot be M/D
    (E.BIRTH_DATE, "january first two thousand", I.PROVIDE_INFO, {"birth_date": d(1, 1, 2000)}, HIGH),
    (E.BIRTH_DATE, "june second nineteen oh eight", I.PROVIDE_INFO, {"birth_date": d(2, 6, 1908)}, HIGH),
    (E.BIRTH_DATE, "november 5th 2005", I.PROVIDE_INFO, {"birth_date": d(5, 11, 2005)}, HIGH),
    (E.BIRTH_DATE, "5/11/05", I.PROVIDE_INFO, {"birth_date": d(11, 5, 2005)}, HIGH),  # 2005, not 1905
    (E.BIRTH_DATE, "7/4/30", I.PROVIDE_INFO, {"birth_date": d(4, 7, 1930)}, HIGH),  # 2030 is future
    (
        E.BIRTH_DATE,
        "born on the 21st of September 1990",
        I.PROVIDE_INFO,
        {"birth_date": d(21, 9, 1990)},
        HIGH,
    ),
    (E.BIRTH_DATE, "February 30th 1985", I.PROVIDE_INFO, {"birth_date": None}, LOW),
    (E.BIRTH_DATE, "February 29 1987", I.PROVIDE_INFO, {"birth_date": None}, LOW),
    (E.BIRTH_DATE, "12/25/2030", I.PROVIDE_INFO, {"birth_date": None}, LOW),  # future
    (E.BIRTH_DATE, "July 4 1776", I.PROVIDE_INFO, {"birth_date": None}, LOW),  # not a living patient
    (E.BIRTH_DATE, "march third", I.PROVIDE_INFO, {"birth_date": None}, LOW),  # no year
    (E.BIRTH_DATE, "13/13/1985", I.PROVIDE_INFO, {"birth_date": None}, LOW),
    (E.BIRTH_DATE, "I don't know", I.UNKNOWN, {"birth_date": None}, LOW),
    (E.BIRTH_DATE, "can you repeat the question", I.REPEAT, {}, HIGH),
]

ALL = TASKS + ANSWERS + CHOICES + PREFERENCES + NAMES + BIRTH_DATES


def _id(case: Case) -> str:
    return f"{case[0].value}:{case[1]}"


@pytest.mark.parametrize("case", ALL, ids=_id)
def test_rules_table(case: Case) -> None:
    expecting, utterance, intent, slots, confidence = case
    check(RULES.parse(utterance, context(expecting)), intent, slots, confidence)


def test_a_yes_to_a_single_offer_picks_it() -> None:
    one = Offered(starts=(OFFERED.starts[0],), practitioners=(OFFERED.practitioners[0],))
    check(RULES.parse("yes", context(E.CHOOSE_SLOT, one)), I.AFFIRM, {"option": 1}, HIGH)


def test_an_option_beyond_what_was_offered_is_no_option() -> None:
    two = Offered(starts=OFFERED.starts[:2], practitioners=OFFERED.practitioners[:2])
    check(RULES.parse("the third one", context(E.CHOOSE_SLOT, two)), I.CHOOSE_OPTION, {"option": None}, LOW)
    check(RULES.parse("the last one", context(E.CHOOSE_SLOT, two)), I.CHOOSE_OPTION, {"option": 2}, HIGH)


def test_offered_practitioners_may_be_display_names() -> None:
    shown = Offered(
        starts=OFFERED.starts, practitioners=("Dr. Amara Okafor", "Dr. Daniel Park", "Dr. Daniel Park")
    )
    check(
        RULES.parse("the one with okafor", context(E.CHOOSE_SLOT, shown)),
        I.CHOOSE_OPTION,
        {"option": 1},
        HIGH,
    )


def test_ordinals_after_a_list_are_options_not_days() -> None:
    answer = RULES.parse("the second", context(E.CHOOSE_SLOT))
    assert answer.slots.option == 2 and answer.slots.date_from is None


def test_ambiguous_practitioner_is_not_guessed() -> None:
    twins = (*PRACTITIONERS, DirectoryEntry("sched-park-2", "Dr. Grace Park"))
    ctx = UnderstandingContext(now=NOW, expecting=E.PREFERENCE, practitioners=twins, visit_types=VISIT_TYPES)
    check(RULES.parse("doctor park", ctx), I.PROVIDE_INFO, {"practitioner": None}, LOW)
    check(RULES.parse("Daniel Park", ctx), I.PROVIDE_INFO, {"practitioner": "sched-park"}, HIGH)


def test_visit_type_phrasings_only_map_to_types_the_clinic_has() -> None:
    ctx = UnderstandingContext(
        now=NOW,
        expecting=E.PREFERENCE,
        practitioners=PRACTITIONERS,
        visit_types=(VisitTypeEntry("consult", "Consult"),),
    )
    assert RULES.parse("a flu shot", ctx).slots.visit_type is None
    aliased = (VisitTypeEntry("imm", "Immunization", aliases=("jab",)),)
    ctx = UnderstandingContext(now=NOW, expecting=E.PREFERENCE, visit_types=aliased)
    assert RULES.parse("I need a jab", ctx).slots.visit_type == "imm"
    assert RULES.parse("flu shot please", ctx).slots.visit_type == "imm"


def test_preferences_are_never_in_the_past() -> None:
    friday = datetime(2026, 11, 27, 16, 0, tzinfo=NY)
    ctx = UnderstandingContext(now=friday, expecting=E.PREFERENCE)
    answer = RULES.parse("next thursday", ctx)
    assert answer.slots.date_from == date(2026, 12, 3)  # the Thursday of the following week
    answer = RULES.parse("on the 3rd", ctx)
    assert answer.slots.date_from == date(2026, 12, 3)
    answer = RULES.parse("November 20th", ctx)  # already gone this year: next year's
    assert answer.slots.date_from == date(2027, 11, 20)
    answer = RULES.parse("on the 31st", UnderstandingContext(now=NOW, expecting=E.PREFERENCE))
    assert answer.slots.date_from == date(2026, 12, 31)  # November has no 31st


async def test_understand_is_the_async_face_of_parse() -> None:
    answer = await RULES.understand("yes please", context(E.CONFIRM))
    assert answer == RULES.parse("yes please", context(E.CONFIRM))
    assert answer.intent is I.AFFIRM and answer.source == "rules"
