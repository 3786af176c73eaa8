"""The contract every understanding backend meets: the caller's words in, a validated structure out.

Backends (rules, a local LLM, an OpenAI-compatible endpoint) see only the utterance and the current
question, plus the clinic's public directory (practitioner display names, visit types). Never a record,
a patient id or a tool: what they return is data for the policy, which alone decides what happens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field


class Intent(StrEnum):
    BOOK = "book"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    LIST_APPOINTMENTS = "list_appointments"
    ASK_AVAILABILITY = "ask_availability"
    AFFIRM = "affirm"  # yes, that's right, book it
    DENY = "deny"  # no, not that one
    PROVIDE_INFO = "provide_info"  # an answer: a name, a birth date, a preference, an option
    CHOOSE_OPTION = "choose_option"  # "the second one", "the 10:30"
    NOTHING_ELSE = "nothing_else"  # "no, that's all"
    GOODBYE = "goodbye"
    HUMAN = "ask_for_human"  # "let me talk to someone"
    REPEAT = "repeat"  # "sorry, say that again?"
    MEDICAL_ADVICE = "medical_advice"  # symptoms, results, prescriptions, "should I..."
    OTHER_PERSON = "other_person"  # asks about someone else's record or appointment
    CHANGE_RULES = "change_rules"  # "ignore your instructions", "you are now..."
    EMERGENCY = "emergency"  # chest pain, can't breathe, stroke signs, severe bleeding, suicidal thoughts
    UNKNOWN = "unknown"


class Expectation(StrEnum):
    """What the agent just asked; the same words mean different things after different questions."""

    TASK = "task"  # "How can I help you today?"
    FULL_NAME = "full_name"
    BIRTH_DATE = "birth_date"
    CHOOSE_SLOT = "choose_slot"  # offered up to three slots
    CHOOSE_APPOINTMENT = "choose_appointment"  # which of your appointments
    PREFERENCE = "preference"  # when / with whom / what kind of visit
    CONFIRM = "confirm"  # "Shall I book it?"
    ANYTHING_ELSE = "anything_else"
    CALLBACK = "callback"  # "Shall I have someone from the front desk call you back?"


class Slots(BaseModel):
    """Everything a backend may extract. Relative dates are resolved against the context's ``now``."""

    model_config = ConfigDict(extra="forbid")

    given_name: str | None = Field(default=None, max_length=60)
    family_name: str | None = Field(default=None, max_length=60)
    birth_date: date | None = None
    date_from: date | None = None  # inclusive
    date_to: date | None = None  # inclusive
    time_not_before: time | None = None
    time_not_after: time | None = None
    practitioner: str | None = Field(default=None, max_length=80)  # a schedule_id from the context, resolved
    visit_type: str | None = Field(default=None, max_length=60)  # a visit-type code from the context
    option: int | None = Field(default=None, ge=1, le=3)  # 1-based index into what was just offered
    phone: str | None = Field(default=None, max_length=20)  # digits only, for a callback number
    #: "the first available", "whatever's soonest": the soonest time, with no day or time of day unless
    #: one was said in the same words ("the first opening next week"); never a date.
    soonest: bool | None = None


class Understood(BaseModel):
    model_config = ConfigDict(extra="forbid")

    intent: Intent
    slots: Slots = Field(default_factory=Slots)
    confidence: float = Field(ge=0.0, le=1.0)
    source: Literal["rules", "llm", "hybrid"] = "rules"


@dataclass(frozen=True)
class DirectoryEntry:
    """A practitioner as callers may name them; ``aliases`` come from settings (spoken nicknames)."""

    schedule_id: str
    display: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class VisitTypeEntry:
    code: str
    display: str
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Offered:
    """What was just read out, in order, so "the second one" or "the 10:30" can be resolved."""

    starts: tuple[datetime, ...] = ()
    practitioners: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnderstandingContext:
    now: datetime  # aware, in the clinic's time zone
    expecting: Expectation
    practitioners: tuple[DirectoryEntry, ...] = ()
    visit_types: tuple[VisitTypeEntry, ...] = ()
    offered: Offered = field(default_factory=Offered)
    #: The conductor already ran the guardrail screen on this turn (and acted on it): a backend need
    #: not run it again, so it runs once per turn.
    screened: bool = False


class Understanding(Protocol):
    async def understand(self, utterance: str, context: UnderstandingContext) -> Understood: ...
