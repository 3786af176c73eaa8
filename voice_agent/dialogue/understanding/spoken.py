"""Spoken numbers, dates, times and phone numbers as speech-to-text writes them.

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
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Final

__all__ = [
    "MAX_CHARS",
    "WEEKDAYS",
    "When",
    "find_phone",
    "fold",
    "parse_birth_date",
    "parse_when",
    "spoken_numbers",
]

MAX_CHARS: Final = 500  # longer input is cut: a caller turn is never this long, junk can be

_TRANSLATE: Final = str.maketrans(
    {
        "\u2018": "'",
        "\u2019": "'",
        "\u02bc": "'",
        "`": "'",
        "\u00b4": "'",
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2013": "-",
        "\u2014": " ",
        "\u00a0": " ",
    }
)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def fold(text: str) -> str:
    """Cap, lower-case and strip accents: "Sofía" and "sofia" must compare equal, as callers say both."""
    text = text[:MAX_CHARS].translate(_TRANSLATE)
    if not text.isascii():
        text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return text.casefold()


# --------------------------------------------------------------------------------------------------
# Number words -> digits

_UNITS: Final = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_TEENS: Final = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS: Final = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fourty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_ORD_UNITS: Final = {
    "first": 1,
    "second": 2,
    "third": 3,
    "fourth": 4,
    "fifth": 5,
    "sixth": 6,
    "seventh": 7,
    "eighth": 8,
    "ninth": 9,
}
_ORD_OTHER: Final = {
    "tenth": 10,
    "eleventh": 11,
    "twelfth": 12,
    "thirteenth": 13,
    "fourteenth": 14,
    "fifteenth": 15,
    "sixteenth": 16,
    "seventeenth": 17,
    "eighteenth": 18,
    "nineteenth": 19,
    "twentieth": 20,
    "thirtieth": 30,
}
_NUMBER_WORDS: Final = frozenset(
    [*_UNITS, *_TEENS, *_TENS, *_ORD_UNITS, *_ORD_OTHER, "hundred", "thousand", "oh"]
)
# "one" is a pronoun in "the one with Dr. Park"; it is a number only next to these or other numbers.
_ONE_AFTER: Final = frozenset(
    {"number", "option", "choice", "at", "is", "around", "about", "by", "after", "before", "until", "till"}
    | {"from", "to", "and", "between", "or", "say", "#", "no", "slot"}
)
_MERIDIEM_WORDS: Final = frozenset({"am", "pm", "oclock", "thirty", "fifteen", "forty", "fourty"})


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _is_num(token: str) -> bool:
    return token.isdigit() or token in _NUMBER_WORDS


def _read_small(src: list[str], i: int) -> tuple[int, int, bool] | None:
    """A number below 100 starting at ``src[i]``: (value, next index, is ordinal)."""
    word = src[i]
    nxt = src[i + 1] if i + 1 < len(src) else ""
    if word in _TENS:
        value = _TENS[word]
        if nxt in _UNITS and _UNITS[nxt] > 0:
            return value + _UNITS[nxt], i + 2, False
        if nxt in _ORD_UNITS:
            return value + _ORD_UNITS[nxt], i + 2, True
        return value, i + 1, False
    if word in _TEENS:
        return _TEENS[word], i + 1, False
    if word in _UNITS:
        return _UNITS[word], i + 1, False
    if word in _ORD_UNITS:
        return _ORD_UNITS[word], i + 1, True
    if word in _ORD_OTHER:
        return _ORD_OTHER[word], i + 1, True
    return None


def _one_is_number(src: list[str], out: list[str], i: int) -> bool:
    if len(src) == 1:
        return True
    prev = out[-1] if out else ""
    nxt = src[i + 1] if i + 1 < len(src) else ""
    return prev.isdigit() or prev in _ONE_AFTER or _is_num(nxt) or nxt in _MERIDIEM_WORDS


def spoken_numbers(text: str) -> str:
    """Turn number words into digits, keeping separate numbers separate.

    "two thirty" -> "2 30", "nineteen eighty five" -> "19 85", "twenty-third" -> "23rd",
    "five five five" -> "5 5 5", "double five" -> "5 5", "two thousand and five" -> "2005".
    Spacing is kept so callers of this function decide what a run of numbers means.
    """
    src: list[str] = []
    for word in text.split():
        if "-" in word and not word[0].isdigit():
            parts = word.split("-")
            if all(p in _NUMBER_WORDS for p in parts):
                src.extend(parts)
                continue
        src.append(word)
    out: list[str] = []
    i, n = 0, len(src)
    while i < n:
        word = src[i]
        if word not in _NUMBER_WORDS and word not in ("double", "triple", "o"):
            out.append(word)  # the common case, kept cheap: most words are not numbers
            i += 1
            continue
        nxt = src[i + 1] if i + 1 < n else ""
        if word in ("double", "triple") and (nxt in _UNITS or (len(nxt) == 1 and nxt.isdigit())):
            digit = str(_UNITS[nxt]) if nxt in _UNITS else nxt
            out.extend([digit] * (2 if word == "double" else 3))
            i += 2
            continue
        if word in ("oh", "o") and out and out[-1].isdigit() and (nxt in _UNITS or nxt.isdigit()):
            out.append("0")
            i += 1
            continue
        if word == "one" and not _one_is_number(src, out, i):
            out.append(word)
            i += 1
            continue
        read = _read_small(src, i)
        if read is None:
            out.append(word)
            i += 1
            continue
        value, j, is_ordinal = read
        if not is_ordinal and j < n and src[j] == "hundred":
            value, j = value * 100, j + 1
            value, j = _add_tail(src, j, value)
        if not is_ordinal and j < n and src[j] == "thousand":
            value, j = value * 1000, j + 1
            k = j + 1 if j < n and src[j] == "and" else j
            tail = _read_small(src, k) if k < n else None
            if tail is not None and not tail[2]:
                tail_value, tail_end, _ = tail
                if tail_end < n and src[tail_end] == "hundred":
                    tail_value, tail_end = _add_tail(src, tail_end + 1, tail_value * 100)
                value, j = value + tail_value, tail_end
        out.append(_ordinal(value) if is_ordinal else str(value))
        i = j
    return " ".join(out)


def _add_tail(src: list[str], j: int, value: int) -> tuple[int, int]:
    """ "... hundred (and) forty two": add the tail below 100 if one follows."""
    k = j + 1 if j < len(src) and src[j] == "and" else j
    if k < len(src):
        tail = _read_small(src, k)
        if tail is not None and not tail[2]:
            after = src[tail[1]] if tail[1] < len(src) else ""
            if tail[0] < 10 and (after in _UNITS or after.isdigit()):
                return value, j  # "eight hundred five five five": digits of a phone number follow
            return value + tail[0], tail[1]
    return value, j


# --------------------------------------------------------------------------------------------------
# Dates

_MONTHS: Final = {
    "january": 1,
    "jan": 1,
    "february": 2,
    "febuary": 2,
    "feb": 2,
    "march": 3,
    "mar": 3,
    "april": 4,
    "apr": 4,
    "may": 5,
    "june": 6,
    "jun": 6,
    "july": 7,
    "jul": 7,
    "august": 8,
    "aug": 8,
    "september": 9,
    "sept": 9,
    "sep": 9,
    "october": 10,
    "oct": 10,
    "november": 11,
    "nov": 11,
    "december": 12,
    "dec": 12,
}
_MONTH: Final = "(?P<mon>" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
_SUFFIX: Final = r"(?P<suf>st|nd|rd|th)?"

# Birth dates (the text has had spoken years joined: "19 85" -> "1985").
_BD_MONTH_FIRST: Final = re.compile(
    rf"\b{_MONTH}\.? (?:the )?(?P<d>\d{{1,2}}){_SUFFIX}(?: of)?,? (?:in |of )?(?P<y>\d{{4}}|\d{{2}})\b"
)
_BD_DAY_FIRST: Final = re.compile(
    rf"(?<![\d:.])\b(?:the )?(?P<d>\d{{1,2}}){_SUFFIX} (?:day )?(?:of )?{_MONTH}\.?,? (?:in |of )?"
    r"(?P<y>\d{4}|\d{2})\b"
)
_BD_ISO: Final = re.compile(r"\b(?P<y>\d{4})[-/.](?P<m>\d{1,2})[-/.](?P<d>\d{1,2})\b")
_BD_NUMERIC: Final = re.compile(r"\b(?P<a>\d{1,2})[-/.](?P<b>\d{1,2})[-/.](?P<y>\d{4}|\d{2})\b")
_MONTH_ALT: Final = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
_BD_MONTH_ONLY: Final = re.compile(
    rf"\d(?:st|nd|rd|th)? (?:of )?{_MONTH_ALT}\b|\b{_MONTH_ALT}\.? (?:the )?\d"
)
_SPOKEN_YEAR: Final = re.compile(r"\b(19|20) (?:(\d\d)|0 (\d))\b")
_SEPARATOR_WORDS: Final = re.compile(r"\b(?:slash|dash|hyphen|dot|point)\b")
_DIGIT_GROUPS: Final = re.compile(r"\d+")
_LETTERS: Final = re.compile(r"[a-z]+")
# Words that may surround a birth date said as bare numbers ("it's 3 3 1985").
_BD_FILLER: Final = _words(
    "my date of birth birthday dob is its it was born on the i im am a d o b yes yeah sure ok okay "
    "um uh so thats that correct and in"
)


def _join_spoken_years(text: str) -> str:
    return _SPOKEN_YEAR.sub(lambda m: m.group(1) + (m.group(2) or "0" + (m.group(3) or "")), text)


def _valid(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _birth(year_text: str, month: int, day: int, today: date) -> date | None:
    """Resolve a birth date: two-digit years to the century that makes it past and plausible."""
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return None
    oldest = today.year - 120
    if len(year_text) == 2:
        yy = int(year_text)
        for century in (2000, 1900):
            candidate = _valid(century + yy, month, day)
            if candidate is not None and candidate <= today and candidate.year >= oldest:
                return candidate
        return None
    candidate = _valid(int(year_text), month, day)
    if candidate is None or candidate > today or candidate.year < oldest:
        return None
    return candidate


def _month_and_day(a: int, b: int) -> tuple[int, int]:
    """US order (month first) unless the first number cannot be a month."""
    return (b, a) if a > 12 >= b else (a, b)


def parse_birth_date(num_text: str, today: date) -> tuple[date | None, bool]:
    """A birth date in ``num_text`` (output of :func:`spoken_numbers`): (the date, whether one was said).

    The second value is True when something date-like was said even if it was invalid (Feb 30, a
    future date, no year), so the caller can tell "unclear" from "not an answer".
    """
    text = _join_spoken_years(_SEPARATOR_WORDS.sub(" ", num_text))
    for pattern in (_BD_MONTH_FIRST, _BD_DAY_FIRST):
        m = pattern.search(text)
        if m:
            return _birth(m.group("y"), _MONTHS[m.group("mon")], int(m.group("d")), today), True
    m = _BD_ISO.search(text)
    if m:
        return _birth(m.group("y"), int(m.group("m")), int(m.group("d")), today), True
    m = _BD_NUMERIC.search(text)
    if m:
        month, day = _month_and_day(int(m.group("a")), int(m.group("b")))
        return _birth(m.group("y"), month, day, today), True
    if _BD_MONTH_ONLY.search(text):
        return None, True  # a month and a day but no year
    groups = _DIGIT_GROUPS.findall(text)
    if not groups or any(w not in _BD_FILLER for w in _LETTERS.findall(text)):
        return None, False
    if len(groups) == 3:
        if len(groups[0]) == 4:
            return _birth(groups[0], int(groups[1]), int(groups[2]), today), True
        if len(groups[2]) in (2, 4) and len(groups[0]) <= 2 and len(groups[1]) <= 2:
            month, day = _month_and_day(int(groups[0]), int(groups[1]))
            return _birth(groups[2], month, day, today), True
    digits = "".join(groups)
    if len(digits) in (6, 8):  # keypad style: MMDDYY or MMDDYYYY
        month, day = _month_and_day(int(digits[:2]), int(digits[2:4]))
        return _birth(digits[4:], month, day, today), True
    return None, len(digits) >= 3


# Preferences --------------------------------------------------------------------------------------

WEEKDAYS: Final = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAY_RE: Final = re.compile(
    r"\b(?:(?P<mod>this coming|this|next|coming|the following|following) )?"
    r"(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?\b"
    r"(?P<suf> (?:of |on )?next week| (?:of |on )?this week| after next)?"
)
_REL_DAY: Final = re.compile(
    r"\b(?P<w>day after tomorrow|tomorrow|tomorow|tmrw|today|tonight|this (?:morning|afternoon|evening))\b"
)
_WEEK_RE: Final = re.compile(
    r"\b(?P<w>(?:the )?week after next|early next week|(?:late|the end of|end of) next week|next week"
    r"|(?:later|the end of|end of|the rest of|rest of) (?:this|the) week|this week)\b"
)
_IN_N: Final = re.compile(
    r"\bin (?:about |around |like |maybe )?(?P<n>\d{1,2}|a|an|a couple(?: of)?|couple(?: of)?|a few|few)"
    r" (?P<u>days?|weeks?|months?)\b"
)
_MONTH_REL: Final = re.compile(r"\b(?P<w>next month|this month|later this month)\b")
_MONTH_DAY: Final = re.compile(
    rf"\b{_MONTH}\.? (?:the )?(?P<d>\d{{1,2}}){_SUFFIX}\b(?![:.]\d)(?:,? (?P<y>\d{{4}}))?"
)
_DAY_MONTH: Final = re.compile(
    rf"(?<![\d:.])\b(?:the )?(?P<d>\d{{1,2}}){_SUFFIX} (?P<of>of )?{_MONTH}\b(?:,? (?P<y>\d{{4}}))?"
)
_SLASH: Final = re.compile(r"(?<![\d/])\b(?P<m>\d{1,2})/(?P<d>\d{1,2})(?:/(?P<y>\d{4}|\d{2}))?\b(?![/\d])")
# "the 1st one", "the 2nd available", "the 1st thing you have": an ordinal that picks among times (or
# asks for the soonest), never a day of the month.
_PICKS: Final = (
    r"available|availability|open|opening|openings|one|ones|slot|slots|spot|spots|time|times|appointment"
    r"|appointments|option|options|choice|possible|free|thing|things|offer|opportunity|chance|date|dates"
)
_DAY_OF_MONTH: Final = re.compile(
    r"\b(?:(?P<prep>on|for|by|before|after|until|till|from|starting|through|to|and) )?the "
    r"(?P<d>\d{1,2})(?P<suf>st|nd|rd|th)?\b(?![:.]\d| ?(?:am|pm|oclock|of|minutes?|hours?|days?|weeks?))"
    rf"(?! (?:{_PICKS})\b)"
)
# A weekday and a day of the month together ("Friday the 1st", "Monday, the 3rd"): one date, both true.
_WEEKDAY_THE_DAY: Final = re.compile(
    r"\b(?P<wd>monday|tuesday|wednesday|thursday|friday|saturday|sunday),? (?:the )?"
    r"(?P<d>\d{1,2})(?:st|nd|rd|th)\b(?![:.]\d| ?(?:am|pm|oclock|of\b))"
)
# A weekday followed by the date it names ("Friday, January 1st", "Monday the 4th of January"): the
# date is what the caller means; the weekday alone would be the coming one.
_ANY_MONTH: Final = "(?:" + "|".join(sorted(_MONTHS, key=len, reverse=True)) + ")"
_WEEKDAY_THEN_DATE: Final = re.compile(
    r"(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?,? (?:the )?"
    rf"(?:{_ANY_MONTH}\b|\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{_ANY_MONTH}\b|\d{{1,2}}/\d{{1,2}}\b)"
)
_PREP_BEFORE: Final = re.compile(
    r"(?:^|\s)(?P<p>after|from|starting|starting on|beginning|since|not before|no earlier than|later than"
    r"|before|until|till|til|by|through|thru|not after|no later than|earlier than)(?: on| the)?\s*$"
)
_FROM_INCLUSIVE: Final = frozenset({"from", "starting", "starting on", "beginning", "since", "not before"})
_FROM_EXCLUSIVE: Final = frozenset({"after", "later than", "no earlier than"})
_TO_INCLUSIVE: Final = frozenset({"until", "till", "til", "by", "through", "thru", "not after"})
_TO_EXCLUSIVE: Final = frozenset({"before", "earlier than", "no later than"})

_TIME_ATOM: Final = re.compile(
    r"(?<![\d:/.])\b(?:(?P<q>half|quarter|a quarter) (?P<rel>past|after|to|till|before|of) (?P<qh>\d{1,2})"
    r"|(?P<noon>noon|midday)"
    r"|(?P<h>\d{1,2})(?:[:.](?P<m>[0-5]\d)| (?P<ms>[0-5]\d)\b(?! ?(?:st|nd|rd|th|minutes?|days?|weeks?|of))"
    r"| 0 (?P<mo>\d)\b)?"
    r"|(?P<hm>\d{3,4}))"
    r"(?![\d/:])(?! \d)"
    r"(?! ?(?:st|nd|rd|th|days?|weeks?|months?|years?|mins?|minutes?|hours?|hrs?|people|of|times)\b)"
    r"(?: ?(?P<mer>am|pm|oclock|in the morning|in the afternoon|in the evening|at night|tonight))?\b"
)
_TIME_PREP: Final = re.compile(
    r"(?:^|\s)(?P<p>after|past|from|not before|no earlier than|later than|starting at|start at|since"
    r"|before|by|until|till|til|not after|no later than|earlier than|up to"
    r"|at|around|about|for|say|maybe|how about|approximately|roughly|like|near|close to|closer to"
    r"|between|and|to|or|is)\s*$"
)
_NB_PREPS: Final = frozenset(
    {"after", "past", "from", "not before", "no earlier than", "later than", "starting at", "start at"}
    | {"since", "between"}
)
_NA_PREPS: Final = frozenset(
    {"before", "by", "until", "till", "til", "not after", "no later than", "earlier than", "up to"}
)
_AROUND_PREPS: Final = frozenset(
    {"around", "about", "approximately", "roughly", "like", "near", "close to", "closer to"}
)
_AM: Final = frozenset({"am", "in the morning"})
_PM: Final = frozenset({"pm", "in the afternoon", "in the evening", "at night", "tonight"})


def _t(hour: int, minute: int = 0) -> time:
    return time(hour, minute)


# (pattern, not_before, not_after, meridiem hint); the more specific phrases come first and are masked
# out of the text before the general ones run, so "early morning" is not also "morning".
_DAYPARTS: Final[tuple[tuple[re.Pattern[str], time | None, time | None, str | None], ...]] = tuple(
    (re.compile(pattern), nb, na, hint)
    for pattern, nb, na, hint in (
        (
            # the number words are digits by now: "first thing" reads "1st thing" ("1st thing you have"
            # is the soonest, not the morning)
            r"\bearly (?:in the )?mornings?\b|\b1st thing(?: in the morning\b|(?! (?:you|that|available)))",
            None,
            _t(10),
            "am",
        ),
        (r"\blate (?:in the )?mornings?\b", _t(10), _t(12), "am"),
        (r"\bearly (?:in the )?afternoons?\b", _t(12), _t(14), "pm"),
        (r"\blate (?:in the )?afternoons?\b", _t(15), _t(17), "pm"),
        (r"\bearly (?:in the )?evenings?\b", _t(17), _t(19), "pm"),
        (r"\bafter lunch(?: ?time)?\b", _t(13), None, "pm"),
        (r"\bbefore lunch(?: ?time)?\b", None, _t(12), "am"),
        (r"\bafter work\b", _t(17), None, "pm"),
        (r"\bafter school\b", _t(15), None, "pm"),
        (r"\bmornings?\b", None, _t(12), "am"),
        (r"\bafternoons?\b", _t(12), _t(17), "pm"),
        (r"\bevenings?\b|\btonight\b", _t(17), None, "pm"),
        (r"\b(?:lunch ?time|lunch|midday)\b", _t(11, 30), _t(13, 30), None),
        (
            r"\b(?:early in the day|as early as possible|something early|early one|early)\b"
            r"(?! (?:next|this|in the week|in the month|december|january))",
            None,
            _t(10),
            "am",
        ),
        (
            r"\b(?:late in the day|later in the day|end of the day|as late as possible|something late"
            r"|late one|last (?:slot|appointment|one) of the day)\b",
            _t(15),
            None,
            "pm",
        ),
    )
)
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


def _monday(d: date) -> date:
    return d - timedelta(days=d.weekday())


def _workweek(monday: date) -> tuple[date, date]:
    return monday, monday + timedelta(days=4)


def _month_span(year: int, month: int) -> tuple[date, date]:
    first = date(year, month, 1)
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return first, nxt - timedelta(days=1)


def _add_months(d: date, months: int) -> tuple[int, int]:
    index = d.year * 12 + d.month - 1 + months
    return index // 12, index % 12 + 1


def _next_month_day(today: date, month: int, day: int, year: int | None) -> date | None:
    if year is not None:
        explicit = _valid(year, month, day)
        return explicit if explicit is not None and explicit >= today else None
    for y in range(today.year, today.year + 5):
        candidate = _valid(y, month, day)
        if candidate is not None and candidate >= today:
            return candidate
    return None


def _next_weekday_day(today: date, weekday: int, day: int) -> date | None:
    """The next date (within about two years) that is both this weekday and this day of the month."""
    for k in range(27):
        y, m = _add_months(today, k)
        candidate = _valid(y, m, day)
        if candidate is not None and candidate >= today and candidate.weekday() == weekday:
            return candidate
    return None


def _next_day_of_month(today: date, day: int) -> date | None:
    for k in range(13):
        y, m = _add_months(today, k)
        candidate = _valid(y, m, day)
        if candidate is not None and candidate >= today:
            return candidate
    return None


def _count(word: str) -> int:
    if word.isdigit():
        return int(word)
    if "couple" in word:
        return 2
    if "few" in word:
        return 3
    return 1  # "a", "an"


@dataclass
class _Dates:
    """Accumulates what was said: spans (a day or a range) and one-sided bounds."""

    spans: list[tuple[date, date]]
    froms: list[date]
    tos: list[date]

    def add(self, text: str, start: int, first: date, last: date, prep: str | None = None) -> None:
        if prep is None:
            m = _PREP_BEFORE.search(text, max(0, start - 24), start)
            prep = m.group("p") if m else None
        if prep in _FROM_INCLUSIVE:
            self.froms.append(first)
        elif prep in _FROM_EXCLUSIVE:
            self.froms.append(last + timedelta(days=1))
        elif prep in _TO_INCLUSIVE:
            self.tos.append(last)
        elif prep in _TO_EXCLUSIVE:
            self.tos.append(first - timedelta(days=1))
        else:
            self.spans.append((first, last))


def _parse_dates(text: str, today: date, *, ordinals_are_days: bool) -> tuple[date | None, date | None]:
    found = _Dates([], [], [])
    this_monday = _monday(today)
    next_monday = this_monday + timedelta(days=7)
    weekday_week: date | None = None  # "Tuesday next week": the week qualifies the weekday
    weekday_hits = list(_WEEKDAY_RE.finditer(text))
    week_phrases = list(_WEEK_RE.finditer(text))
    if weekday_hits and week_phrases:
        w = week_phrases[0].group("w")
        if w == "next week":
            weekday_week = next_monday
        elif w == "this week":
            weekday_week = this_monday
        if weekday_week is not None:
            week_phrases = week_phrases[1:]
    taken: list[tuple[int, int]] = []  # spans already read as a date, so no later pattern reads them again
    for m in _WEEKDAY_THE_DAY.finditer(text):
        wd, dom = WEEKDAYS.index(m.group("wd")), int(m.group("d"))
        both = _next_weekday_day(today, wd, dom)
        if both is not None:
            taken.append(m.span())
            found.add(text, m.start(), both, both)
    for m in weekday_hits:
        if any(a <= m.start() < b for a, b in taken) or _WEEKDAY_THEN_DATE.match(text, m.start()):
            continue  # "Friday the 1st", "Friday, January 1st": the date says which Friday
        wd = WEEKDAYS.index(m.group("wd"))
        mod, suf = m.group("mod"), (m.group("suf") or "").strip()
        if mod == "next" or suf.endswith("next week") or suf == "after next":
            day = next_monday + timedelta(days=wd + (7 if suf == "after next" else 0))
        elif suf.endswith("this week"):
            day = this_monday + timedelta(days=wd)
        elif weekday_week is not None and mod is None:
            day = weekday_week + timedelta(days=wd)
        else:
            ahead = (wd - today.weekday()) % 7 or 7
            day = today + timedelta(days=ahead)
        found.add(text, m.start(), day, day)
    for m in _REL_DAY.finditer(text):
        w = m.group("w")
        offset = 2 if w.startswith("day after") else 1 if w.startswith("tom") or w == "tmrw" else 0
        day = today + timedelta(days=offset)
        found.add(text, m.start(), day, day)
    for m in week_phrases:
        w = m.group("w")
        if w.endswith("week after next"):
            first, last = _workweek(next_monday + timedelta(days=7))
        elif w == "early next week":
            first, last = next_monday, next_monday + timedelta(days=1)
        elif w.endswith("next week"):
            first, last = (next_monday + timedelta(days=3), next_monday + timedelta(days=4))
            if w == "next week":
                first, last = _workweek(next_monday)
        elif w == "this week":
            first, last = today, max(today, this_monday + timedelta(days=4))
        else:  # later / end of / rest of this week
            first = today + timedelta(days=1) if not w.startswith(("the rest", "rest")) else today
            last = max(first, this_monday + timedelta(days=4))
        found.add(text, m.start(), first, last)
    for m in _IN_N.finditer(text):
        n, unit = _count(m.group("n")), m.group("u")
        if unit.startswith("day"):
            day = today + timedelta(days=n)
            found.add(text, m.start(), day, day)
        elif unit.startswith("week"):
            first, last = _workweek(_monday(today + timedelta(days=7 * n)))
            found.add(text, m.start(), first, last)
        else:
            first, last = _month_span(*_add_months(today, n))
            found.add(text, m.start(), first, last)
    for m in _MONTH_REL.finditer(text):
        w = m.group("w")
        if w == "next month":
            first, last = _month_span(*_add_months(today, 1))
        else:
            first, last = today, _month_span(today.year, today.month)[1]
        found.add(text, m.start(), first, last)
    for pattern in (_MONTH_DAY, _DAY_MONTH):
        for m in pattern.finditer(text):
            if pattern is _DAY_MONTH and m.group("mon") == "may" and not (m.group("suf") or m.group("of")):
                continue  # "at 2 may I ..." is not May 2nd
            if any(a <= m.start() < b for a, b in taken):
                continue
            y = m.group("y")
            named = _next_month_day(today, _MONTHS[m.group("mon")], int(m.group("d")), int(y) if y else None)
            if named is not None:
                taken.append(m.span())
                found.add(text, m.start(), named, named)
    for m in _SLASH.finditer(text):
        y = m.group("y")
        year = None if y is None else int(y) + (2000 if len(y) == 2 else 0)
        numeric = _next_month_day(today, int(m.group("m")), int(m.group("d")), year)
        if numeric is not None:
            found.add(text, m.start(), numeric, numeric)
    for m in _DAY_OF_MONTH.finditer(text):
        if any(a <= m.start() < b for a, b in taken):
            continue
        prep, day_number = m.group("prep"), int(m.group("d"))
        if not (prep or m.group("suf")) or not (ordinals_are_days or prep == "on"):
            continue
        if prep is None and day_number <= 3:
            continue  # a bare "the 1st" / "the 2nd" picks or asks for the soonest; "on the 1st" is a day
        of_month = _next_day_of_month(today, int(m.group("d")))
        if of_month is not None:
            bound = prep if prep not in (None, "on", "for", "and", "to") else ""
            found.add(text, m.start(), of_month, of_month, bound)
    froms = [a for a, _ in found.spans] + found.froms
    tos = [b for _, b in found.spans] + found.tos
    date_from = max(min(froms), today) if froms else None
    date_to = max(tos) if tos else None
    if date_to is not None and date_to < today:
        date_to = None
    if date_from is not None and date_to is not None and date_to < date_from:
        date_to = None
    return date_from, date_to


def _hour24(hour: int, meridiem: str | None, hint: str | None) -> int | None:
    if meridiem in _AM:
        return None if hour > 12 else hour % 12
    if meridiem in _PM:
        return hour if hour >= 12 else hour + 12
    if hour >= 13:
        return hour if hour <= 23 else None
    if hour == 0:
        return 0
    if hint == "pm":
        return hour if hour == 12 else hour + 12
    if hint == "am":
        return hour
    return hour + 12 if 1 <= hour <= 6 else hour


def _minutes(t: time) -> int:
    return t.hour * 60 + t.minute


def _clock(minutes: int) -> time:
    minutes = max(0, min(minutes, 23 * 60 + 59))
    return time(minutes // 60, minutes % 60)


def _read_time(m: re.Match[str], hint: str | None, prep: str | None) -> time | None:
    """The clock time of one atom, or None when a bare number is not clearly a time."""
    mer = m.group("mer")
    if m.group("noon"):
        return time(12, 0)
    if m.group("q"):
        base = _hour24(int(m.group("qh")), mer, hint)
        if base is None:
            return None
        delta = 30 if m.group("q") == "half" else 15
        total = base * 60 + (-delta if m.group("rel") in ("to", "till", "before", "of") else delta)
        return _clock(total)
    if m.group("hm"):
        digits = m.group("hm")
        if prep is None and mer is None:
            return None
        hour, minute = int(digits[:-2]), int(digits[-2:])
        if minute >= 60:
            return None
    else:
        hour = int(m.group("h"))
        minute_text = m.group("m") or m.group("ms") or m.group("mo")
        minute = int(minute_text) if minute_text else 0
        explicit = m.group("m") is not None or mer is not None
        if not explicit and prep is None:
            return None
        if m.group("ms") is not None and prep is None and mer is None:
            return None
    if mer == "oclock":
        mer = None
    hour24 = _hour24(hour, mer, hint)
    if hour24 is None or hour24 > 23 or minute > 59:
        return None
    return time(hour24, minute)


def _parse_times(text: str) -> tuple[time | None, time | None]:
    masked = text
    hint: str | None = None
    part_nb: list[time | None] = []
    part_na: list[time | None] = []
    for pattern, nb, na, part_hint in _DAYPARTS:
        for m in pattern.finditer(masked):
            part_nb.append(nb)
            part_na.append(na)
            hint = hint or part_hint
            masked = masked[: m.start()] + " " * (m.end() - m.start()) + masked[m.end() :]
    # Several parts of day are alternatives ("morning or afternoon"): their union.
    not_before = None if not part_nb or None in part_nb else min(t for t in part_nb if t is not None)
    not_after = None if not part_na or None in part_na else max(t for t in part_na if t is not None)
    explicit_nb: time | None = None
    explicit_na: time | None = None
    windows: list[tuple[time, time]] = []  # "at 2 or 3": the union of the windows
    previous_prep: str | None = None
    for m in _TIME_ATOM.finditer(masked):
        p = _TIME_PREP.search(masked, max(0, m.start() - 20), m.start())
        prep = p.group("p") if p else None
        if prep == "or":
            prep = previous_prep
        elif prep == "and":
            prep = "until" if previous_prep == "between" else None
        elif prep == "to":
            prep = "until" if previous_prep in ("from", "between") else None
        elif prep == "is" and m.group("mer") is None:
            prep = None
        t = _read_time(m, hint, prep)
        if t is None:
            continue
        previous_prep = prep
        if prep in _NB_PREPS:
            explicit_nb = t if explicit_nb is None else min(explicit_nb, t)
        elif prep in _NA_PREPS or prep == "until":
            explicit_na = t if explicit_na is None else max(explicit_na, t)
        elif prep in _AROUND_PREPS:
            windows.append((_clock(_minutes(t) - 30), _clock(_minutes(t) + 30)))
        else:
            windows.append((t, _clock(_minutes(t) + 30)))
    if windows:
        if explicit_nb is None:
            explicit_nb = min(a for a, _ in windows)
        if explicit_na is None:
            explicit_na = max(b for _, b in windows)
    if explicit_nb is not None:
        not_before = explicit_nb if not_before is None else max(not_before, explicit_nb)
    if explicit_na is not None:
        not_after = explicit_na if not_after is None else min(not_after, explicit_na)
    if not_before is not None and not_after is not None and not_before >= not_after:
        not_before, not_after = explicit_nb, explicit_na  # contradiction: the explicit times win
        if not_before is not None and not_after is not None and not_before >= not_after:
            not_after = None
    return not_before, not_after


def parse_when(num_text: str, today: date, *, ordinals_are_days: bool = True) -> When:
    """Dates and times of day the caller asked for, resolved against ``today``.

    ``ordinals_are_days`` is False while the caller is choosing among offered options, where
    "the second" is an option, not the 2nd of the month ("on the 2nd" still is a date).
    """
    date_from, date_to = _parse_dates(num_text, today, ordinals_are_days=ordinals_are_days)
    not_before, not_after = _parse_times(num_text)
    return When(date_from, date_to, not_before, not_after, bool(_OPEN.search(num_text)))


# --------------------------------------------------------------------------------------------------
# Phone numbers

_PHONE_RUN: Final = re.compile(r"\+?\(?\d[\d().\-]*(?: +\(?\d[\d().\-]*)*")
_NON_DIGIT: Final = re.compile(r"\D")


def find_phone(num_text: str) -> str | None:
    """The longest run of 7 to 15 digits (spaces, dashes, dots and brackets between them allowed)."""
    best: str | None = None
    for m in _PHONE_RUN.finditer(num_text):
        digits = _NON_DIGIT.sub("", m.group())
        if 7 <= len(digits) <= 15 and (best is None or len(digits) > len(best)):
            best = digits
    return best
