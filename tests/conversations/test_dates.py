"""Whole conversations about dates, on the real sandbox, on today's date and on a spread of others.

The across-dates test seeds a fresh clinic as of each hard day (a month end, the last days of December,
a leap day, both daylight-saving changes, a Friday afternoon, a weekend) and starts the agent's clock
there, so the suite cannot again pass only in the month it was written.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from harness.conversations import Converse, Transcript, booked, conversation_runner
from harness.sandbox import Sandbox
from tests.conversations.test_tasks import persona
from voice_agent.dialogue import speech
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.runtime import runtime
from voice_agent.sandbox.private import private_sandbox


def new_booking(sandbox: Sandbox, patient_id: str, before: dict[str, object]) -> datetime:
    (new,) = set(booked(sandbox, patient_id)) - set(before)
    start = booked(sandbox, patient_id)[new]["start"]
    return datetime.fromisoformat(start).astimezone(sandbox.settings.zone)


def never_stuck(transcript: Transcript) -> None:
    """No sentence said three times: a caller is never answered with the same dead end again and again."""
    repeated = [line for line, n in Counter(transcript.agent).items() if n > 2]
    assert not repeated, transcript.text()


def last_published_day(sandbox: Sandbox) -> date:
    clinic = sandbox.clinic
    return clinic.today + timedelta(days=1) + timedelta(weeks=clinic.weeks) - timedelta(days=1)


def soonest(start: datetime, today: date) -> bool:
    """Within the first week of the schedule (only about a fifth of its slots are busy)."""
    return 0 < (start.date() - today).days <= 7


async def test_the_first_available_time_is_the_soonest_not_a_date(
    sandbox: Sandbox, converse: Converse
) -> None:
    caller = sandbox.clinic.patients_tagged("pool")[20]
    before = booked(sandbox, caller.id)
    transcript = await converse(
        persona(caller, "I'd like an appointment", preference="The first available time.")
    )
    assert transcript.end == "goodbye", transcript.text()
    assert not any("don't have anything" in line for line in transcript.agent), transcript.text()
    start = new_booking(sandbox, caller.id, before)
    assert soonest(start, sandbox.clock().date()), transcript.text()
    never_stuck(transcript)


async def test_a_day_beyond_the_schedule_is_said_so_and_the_first_available_follows(
    sandbox: Sandbox, converse: Converse
) -> None:
    caller = sandbox.clinic.patients_tagged("pool")[21]
    before = booked(sandbox, caller.id)
    far = last_published_day(sandbox) + timedelta(days=10)
    transcript = await converse(
        persona(
            caller,
            "can I book an appointment",
            preference=f"on {far:%B} {speech.ordinal(far.day)}",
            overrides=[("relax", "the first available time")],
        )
    )
    assert transcript.end == "goodbye", transcript.text()
    beyond = next(line for line in transcript.agent if "as far ahead as" in line)
    assert speech.day(last_published_day(sandbox), today=sandbox.clock().date()) in beyond, beyond
    assert "don't have anything free" not in beyond
    start = new_booking(sandbox, caller.id, before)
    assert start.date() <= last_published_day(sandbox), transcript.text()
    never_stuck(transcript)


#: Noon on a Friday before a weekend, the evening of the year's last day, and so on: each is "now" for a
#: whole clinic seeded that day.
HARD_DAYS = [
    datetime(2026, 12, 3, 15, 0),  # the next 1st (January) lies past the published schedule
    datetime(2026, 12, 4, 16, 30),  # a Friday afternoon
    datetime(2026, 12, 6, 12, 0),  # a Sunday
    datetime(2026, 12, 30, 9, 0),
    datetime(2026, 12, 31, 16, 30),  # the year's last afternoon: "the first" is next year
    datetime(2027, 1, 31, 11, 0),  # a month end, on a Sunday
    datetime(2027, 3, 2, 12, 0),  # "on the first" is April 1st, past the schedule
    datetime(2027, 3, 13, 14, 0),  # the day before clocks go forward
    datetime(2027, 11, 6, 10, 0),  # the day before clocks go back
    datetime(2028, 2, 28, 15, 0),  # the day before a leap day
    datetime(2028, 2, 29, 10, 0),  # a leap day
]

#: (opening, preference, check on the booked start given the day the call was made)
DATE_CALLS = [
    ("I'd like an appointment", "The first available time.", soonest),
    ("book me in please", "the first one you have", soonest),
    (
        "I need to see a doctor",
        "next Friday",
        lambda start, today: start.weekday() == 4 or start.date() > today,  # or the first available
    ),
    ("can I make an appointment", "on the first", lambda start, today: start.date() > today),
    ("I'd like to book a visit", "tomorrow morning", lambda start, today: start.date() > today),
    ("schedule me for the 15th", "the 15th", lambda start, today: start.date() > today),
]


@pytest.mark.filterwarnings("ignore:VOICE_AGENT_CLOCK_START is set")
@pytest.mark.parametrize("now", HARD_DAYS, ids=lambda d: d.strftime("%Y-%m-%d-%H%M"))
async def test_conversations_across_dates(now: datetime) -> None:
    with private_sandbox(now=now) as sandbox, tempfile.TemporaryDirectory() as home:
        async with runtime(sandbox.agent_settings(Path(home))) as agent:
            assert agent.clock().date() == now.date()
            converse = conversation_runner(agent, RulesUnderstanding(), sandbox)
            today = sandbox.clock().date()
            pool = sandbox.clinic.patients_tagged("pool")
            for caller, (opening, preference, check) in zip(pool, DATE_CALLS, strict=False):
                before = booked(sandbox, caller.id)
                transcript = await converse(persona(caller, opening, preference=preference))
                assert transcript.end == "goodbye", transcript.text()
                start = new_booking(sandbox, caller.id, before)
                assert check(start, today) and start.date() <= last_published_day(sandbox), transcript.text()
                if check is soonest:  # asked for the soonest: offered it at once, no "nothing free" detour
                    assert "relax" not in transcript.asked, transcript.text()
                assert f"on {speech.day(start, today=today)}" in " ".join(transcript.agent) or (
                    speech.day(start, today=today) in ("today", "tomorrow")
                ), transcript.text()
                never_stuck(transcript)
            listing_caller = sandbox.clinic.patients_tagged("with-appointments")[0]
            transcript = await converse(persona(listing_caller, "when is my next appointment"))
            assert transcript.end == "goodbye", transcript.text()
            upcoming = sorted(
                datetime.fromisoformat(a["start"]).astimezone(sandbox.settings.zone)
                for a in booked(sandbox, listing_caller.id).values()
                if datetime.fromisoformat(a["start"]) > sandbox.clock()
            )
            said = " ".join(transcript.agent)
            for start in upcoming[:3]:
                assert speech.when(start, sandbox.settings.zone, today=today) in said, transcript.text()
            assert " on today" not in said and " on tomorrow" not in said, transcript.text()
