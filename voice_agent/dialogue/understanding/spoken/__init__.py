"""Spoken numbers, dates, times, phone numbers and spelled letters as speech-to-text writes them.

Whisper renders the same words as "two thirty", "2:30", "230" or "2.30 p.m.", and a birth date as
"March 3rd, 1985", "03/03/1985" or "zero three zero three nineteen eighty five". Everything here is pure,
precompiled and bounded (input is capped) because the rules backend runs it on every caller turn.

Interpretation rules (the clinic is in the US; all of them are tested):

* Numeric dates are month first (03/04/1985 is March 4th) unless the first number cannot be a month.
  Eight keypad digits are MMDDYYYY, six are MMDDYY.
* A two-digit birth year takes the century that puts the date in the past and at most 120 years ago.
* A birth date must not be after today and not more than 120 years ago; an impossible date (Feb 30) is
  no date at all.
* "Thursday" / "this Thursday" is the next Thursday after today; "next Thursday" is the Thursday of the
  following calendar week (Monday-start weeks), the common US reading.
* "next week" / "this week" / "in two weeks" are Monday to Friday of that week ("this week" from today).
* "on the 3rd" is the next 3rd of a month that is not in the past; "December 9th" likewise.
* A bare hour 1-6 means pm, 7-11 am, 12 noon, unless am/pm or a part of day ("in the evening") says
  otherwise; 13-23 are read as a 24-hour clock.
* A specific time ("at 2:30") is a 30-minute window from that time (14:30-15:00); "around 2:30" is
  30 minutes either side. "after 4" is not_before 16:00, "before 10" not_after 10:00.
* Parts of day: morning is not_after 12:00, afternoon 12:00-17:00, evening not_before 17:00, "early"
  not_after 10:00, "late in the day" not_before 15:00, "late afternoon" 15:00-17:00.
* A spelled word is single letters, with "hyphen", "dash" or "apostrophe" said between them, "P as in
  Peter" (or "for", "like") read as P, and commas, full stops and pauses between letters ignored.
"""

from .birth_dates import parse_birth_date
from .dates import WEEKDAYS
from .letters import spelled_so_far
from .numbers import MAX_CHARS, fold, spoken_numbers
from .phones import find_phone
from .when import When, parse_when

__all__ = [
    "MAX_CHARS",
    "WEEKDAYS",
    "When",
    "find_phone",
    "fold",
    "parse_birth_date",
    "parse_when",
    "spelled_so_far",
    "spoken_numbers",
]
