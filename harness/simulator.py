"""A simulated caller who answers what the agent asks (not a fixed script).

The persona knows who they are and what they want; each agent line is matched to the question it asks,
and the persona answers it in its own style. ``overrides`` let a scenario say something else the first
time a given question comes up (a wrong birth date, a change of mind, an injection attempt).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date

ORDINALS = {1: "the first one", 2: "the second one", 3: "the third one"}


def say_date(born: date, style: str) -> str:
    day = born.day
    suffix = "th" if 11 <= day <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    if style == "numeric":
        return born.strftime("%m/%d/%Y")
    if style == "ordinal":
        return f"the {day}{suffix} of {born:%B} {born.year}"
    if style == "keypad":
        return born.strftime("%m%d%Y")
    if style == "sentence":
        return f"I was born on {born:%B} {day}{suffix}, {born.year}"
    return f"{born:%B} {day} {born.year}"


def spell(family: str) -> str:
    """A surname letter by letter, as a caller spells it: no accents, "hyphen" and "apostrophe" said."""
    import unicodedata

    plain = "".join(c for c in unicodedata.normalize("NFKD", family) if not unicodedata.combining(c))
    return " ".join({"-": "hyphen", "'": "apostrophe"}.get(c, c.upper()) for c in plain if c != " ")


def say_name(given: str, family: str, style: str) -> str:
    if style == "intro":
        return f"my name is {given} {family}"
    if style == "lower":
        return f"{given} {family}".lower()
    if style == "ascii":
        import unicodedata

        text = f"{given} {family}"
        return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    if style == "this-is":
        return f"hi, this is {given} {family}"
    if style == "last-first":
        return f"{family}, {given}"
    if style == "spelled":  # the surname spelled after it, as callers do when asked twice
        return f"{given} {family}, {spell(family)}"
    return f"{given} {family}"


@dataclass
class Persona:
    given: str
    family: str
    born: date
    opening: str
    preference: str = "the first available"
    pick: int = 1
    accept: bool = True
    accept_callback: bool = True
    callback_number: str = "555 010 7788"
    name_style: str = "plain"
    date_style: str = "long"
    then: str = "no, that's all, thank you"  # answer to "anything else?"
    #: (question marker, answer) pairs used once each, in order, before the persona's own answer.
    overrides: list[tuple[str, str]] = field(default_factory=list)
    #: Called when the agent asks to confirm (a test may race for the slot here); may return an awaitable,
    #: which the runner awaits before the caller answers.
    on_confirm: Callable[[str], Awaitable[None] | None] | None = None


# What each agent line is asking, by the words of the templates (voice_agent/dialogue/templates.py).
QUESTIONS: list[tuple[str, re.Pattern[str]]] = [
    ("goodbye", re.compile(r"goodbye\.?$", re.I)),
    ("callback_number", re.compile(r"best number to call you back", re.I)),
    ("callback", re.compile(r"call you back\. would you like that\?$", re.I)),
    ("name", re.compile(r"first and last name\??$", re.I)),
    ("birth_date", re.compile(r"date of birth", re.I)),
    ("spell", re.compile(r"spell your last name", re.I)),
    ("spell_given", re.compile(r"your first name, letter by letter", re.I)),
    ("relax", re.compile(r"first available time instead\?$", re.I)),
    ("confirm", re.compile(r"shall i (book it|cancel it|go ahead)\?$", re.I)),
    (
        "one_slot",
        re.compile(r"(the first time i have|the nearest i have) is .* would you like that\?$", re.I),
    ),
    ("choose_slot", re.compile(r"(which would you like\?$|which one would you like\?)", re.I)),
    ("choose_appointment", re.compile(r"which appointment", re.I)),
    (
        "preference",
        re.compile(r"(preferred day, time, or doctor|when would you like instead|a different time\?$)", re.I),
    ),
    ("anything_else", re.compile(r"anything else i can help with\?$", re.I)),
    ("task", re.compile(r"how can i help you today\?", re.I)),
]


def offered(line: str) -> int:
    """How many options the line reads out ("A or B", "A, B, or C"): a caller picks among those."""
    options = line.rsplit(": ", 1)[-1] if ": " in line else line.split("openings", 1)[-1]
    return max(1, min(3, len(re.findall(r"\b\d{1,2}(?::\d\d)? [AP]M\b|\bnoon\b", options))))


def question_of(line: str) -> str:
    for name, pattern in QUESTIONS:
        if pattern.search(line.strip()):
            return name
    return "unknown"


class CallerSimulator:
    def __init__(self, persona: Persona, *, max_turns: int = 30) -> None:
        self.persona = persona
        self.turns = 0
        self.max_turns = max_turns
        self.asked: list[str] = []
        self._opened = False
        self.pending: list[Awaitable[None]] = []

    def answer(self, line: str) -> str | None:
        """The caller's next words, or None to hang up."""
        asked = question_of(line)
        self.asked.append(asked)
        self.turns += 1
        if asked == "goodbye" or self.turns > self.max_turns:
            return None
        if asked == "task" and not self._opened:  # the greeting: the caller's opening line comes first
            self._opened = True
            return self.persona.opening
        for index, (marker, reply) in enumerate(self.persona.overrides):
            if marker == asked:
                del self.persona.overrides[index]
                return reply
        p = self.persona
        if asked == "task":
            return p.opening
        if asked == "name":
            return say_name(p.given, p.family, p.name_style)
        if asked == "birth_date":
            return say_date(p.born, p.date_style)
        if asked == "spell":
            return spell(p.family)
        if asked == "spell_given":
            return spell(p.given.split()[0])
        if asked in ("preference",):
            return p.preference
        if asked == "relax":
            return "yes please"
        if asked == "choose_slot":
            return ORDINALS[min(p.pick, offered(line))] if p.pick <= 3 else "the last one"
        if asked == "one_slot":
            return "yes, that works"
        if asked == "choose_appointment":
            return ORDINALS[min(p.pick, offered(line))]
        if asked == "confirm":
            if p.on_confirm is not None and (waiting := p.on_confirm(line)) is not None:
                self.pending.append(waiting)
            return "yes please" if p.accept else "no, not that"
        if asked == "anything_else":
            answer, p.then = p.then, "no, that's all, thank you"
            return answer
        if asked == "callback":
            return "yes please" if p.accept_callback else "no thanks"
        if asked == "callback_number":
            return p.callback_number
        return "sorry, what?"
