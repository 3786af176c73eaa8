"""What the language model is shown and what it may answer: the prompt, the output schema, the validation.

Why it is built this way:

* Prompt injection. The caller's words are the *only* user content, delimited, and the system prompt
  says they are data to classify. The model sees no record, no patient id and no tool, and its answer
  is only a proposal: it is validated here and the policy alone decides what happens.
* Small local models. A 1.5B model on 2 CPU cores writes ~10 grammar-constrained tokens/s, so the
  answer is a flat object with only the fields that can answer the question just asked, each
  optional (offered every field, the model invents a value for each), and enums for intents,
  practitioners, visit types and options let the grammar do the matching the model would get wrong.
* Prefix caching. llama.cpp reuses the evaluated prefix of the previous prompt, so the system prompt
  runs from the most stable part (rules) through the clinic directory and today's date to the
  per-turn part (the question just asked, the options just offered).
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from typing import Any, Final, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .base import Intent, Slots, UnderstandingContext, Understood
from .llm_prompt_data import (
    _DAY_WORDS,
    _FIELDS,
    _GENERIC_WORDS,
    _MONTHS,
    _NUMBER_WORDS,
    _PREFERENCES,
    _QUESTIONS,
    _RULES,
    _TIME_WORDS,
)

__all__ = [
    "MAX_UTTERANCE_CHARS",
    "SLOT_INTENTS",
    "ChatMessage",
    "InvalidOutput",
    "allowed_fields",
    "build_messages",
    "build_system_prompt",
    "output_schema",
    "parse_output",
    "practitioner_labels",
]

#: A turn longer than this is not a scheduling answer; cutting it bounds prompt size and cost.
MAX_UTTERANCE_CHARS: Final = 400
_OPEN, _CLOSE = "<caller>", "</caller>"
_DELIMITERS: Final = re.compile(r"</?\s*caller\s*>", re.IGNORECASE)
_CONTROL: Final = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_DAYS_LISTED: Final = 14
_NAME_MAX: Final = 60


class ChatMessage(TypedDict):
    role: Literal["system", "user"]
    content: str


class InvalidOutput(ValueError):
    """The model's answer is not valid JSON, breaks the schema, or is out of range.

    The message names the failure class only, never the output (it carries caller speech).
    """


def practitioner_labels(context: UnderstandingContext) -> dict[str, str]:
    """The names the model may answer with, each mapped to its schedule id.

    A display name shared by two schedules gets its id appended, so every label names one schedule.
    """
    seen: dict[str, int] = {}
    for entry in context.practitioners:
        seen[entry.display] = seen.get(entry.display, 0) + 1
    return {
        (entry.display if seen[entry.display] == 1 else f"{entry.display} [{entry.schedule_id}]"): (
            entry.schedule_id
        )
        for entry in context.practitioners
    }


def _directory_lines(context: UnderstandingContext) -> list[str]:
    lines: list[str] = []
    if context.practitioners:
        lines.append("Practitioners (name, then schedule id):")
        for label, entry in zip(practitioner_labels(context), context.practitioners, strict=True):
            also = f"; also called {', '.join(entry.aliases)}" if entry.aliases else ""
            lines.append(f"- {label} (id {entry.schedule_id}{also})")
    else:
        lines.append("Practitioners: none listed (leave practitioner out).")
    if context.visit_types:
        lines.append("Visit types (code: meaning):")
        for visit in context.visit_types:
            also = f"; also called {', '.join(visit.aliases)}" if visit.aliases else ""
            lines.append(f"- {visit.code}: {visit.display}{also}")
    else:
        lines.append("Visit types: none listed (leave visit_type out).")
    return lines


def _calendar_lines(now: datetime) -> list[str]:
    """Today and the next two weeks with weekdays: small models cannot do calendar arithmetic."""
    today = now.date()
    zone = getattr(now.tzinfo, "key", None) or now.tzname() or "local"
    days = ", ".join(f"{(today + timedelta(days=n)):%a %Y-%m-%d}" for n in range(1, _DAYS_LISTED + 1))
    return [
        # no clock time: small models copy it into time_not_before
        f"Today is {today:%A %Y-%m-%d} in the clinic's time zone ({zone}).",
        f"The next days are: {days}.",
    ]


def _offered_lines(context: UnderstandingContext) -> list[str]:
    offered = context.offered
    if not offered.starts:
        return ["No options have been offered."]
    names = {entry.schedule_id: entry.display for entry in context.practitioners}
    lines = ["Options just offered, in order:"]
    for index, start in enumerate(offered.starts, start=1):
        who = offered.practitioners[index - 1] if index <= len(offered.practitioners) else ""
        with_whom = f" with {names.get(who, who)}" if who else ""
        lines.append(f"{index}. {start:%A %Y-%m-%d at %H:%M}{with_whom}")
    return lines


def build_system_prompt(context: UnderstandingContext) -> str:
    """Rules, the clinic's public directory, the date, the question, the offers: most stable first.

    llama.cpp re-evaluates the prompt from the first token that differs from the previous call, and on
    2 CPU cores the 1.5B model evaluates only ~35 prompt tokens/s: a per-turn detail early in the
    prompt would cost seconds on every turn.
    """
    question = _QUESTIONS.get(context.expecting, str(context.expecting))
    parts = [
        _RULES,
        *_directory_lines(context),
        "",
        *_calendar_lines(context.now),
        "",
        f"The agent just asked: {question}",
        f"Fields you may add now: {', '.join(allowed_fields(context)) or 'none (intent only)'}.",
        *_offered_lines(context),
    ]
    return "\n".join(parts)


def delimit_utterance(utterance: str) -> str:
    """The caller's words, cleaned of control characters and of anything that looks like our delimiters."""
    text = _CONTROL.sub(" ", _DELIMITERS.sub(" ", utterance))
    text = " ".join(text.split())[:MAX_UTTERANCE_CHARS]
    return f"{_OPEN}{text}{_CLOSE}"


def build_messages(utterance: str, context: UnderstandingContext) -> list[ChatMessage]:
    """Exactly two messages: our system prompt, and the caller's words as the only user content."""
    return [
        {"role": "system", "content": build_system_prompt(context)},
        {"role": "user", "content": delimit_utterance(utterance)},
    ]


_DATE: Final = {"type": "string", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"}
_TIME: Final = {"type": "string", "pattern": r"^[0-2][0-9]:[0-5][0-9]$"}
_NAME: Final = {"type": "string"}
_PHONE: Final = {"type": "string", "pattern": r"^[0-9]+$"}
#: Intents that may carry slots; every other intent is the whole answer.
SLOT_INTENTS: Final = (
    Intent.BOOK,
    Intent.CANCEL,
    Intent.RESCHEDULE,
    Intent.ASK_AVAILABILITY,
    Intent.AFFIRM,
    Intent.DENY,
    Intent.PROVIDE_INFO,
    Intent.CHOOSE_OPTION,
)


def output_schema(context: UnderstandingContext) -> dict[str, Any]:
    """The JSON schema the model's answer is constrained to (a grammar in llama.cpp).

    Only ``intent`` is required and only the fields that can answer this question exist, and only after
    an intent that carries slots (``anyOf``: an emergency or a goodbye closes the object at once). A
    small model offered fields fills every one with invented values, at ~0.1-0.3 s per token on 2 cores.
    Practitioners, visit types and options are enums drawn from this turn's context, so the model
    cannot invent a schedule. No string lengths: bounded repetition makes llama.cpp's grammar slow;
    lengths are checked afterwards.
    """
    shapes: dict[str, Any] = {
        "given_name": _NAME,
        "family_name": _NAME,
        "birth_date": _DATE,
        "date_from": _DATE,
        "date_to": _DATE,
        "time_not_before": _TIME,
        "time_not_after": _TIME,
        "phone": _PHONE,
    }
    if context.practitioners:
        shapes["practitioner"] = {"type": "string", "enum": list(practitioner_labels(context))}
    if context.visit_types:
        shapes["visit_type"] = {"type": "string", "enum": [visit.code for visit in context.visit_types]}
    if context.offered.starts:
        shapes["option"] = {
            "type": "integer",
            "enum": list(range(1, min(3, len(context.offered.starts)) + 1)),
        }
    fields = {name: shapes[name] for name in allowed_fields(context) if name in shapes}
    if not fields:
        return _object([intent.value for intent in Intent], {})
    bare = [intent.value for intent in Intent if intent not in SLOT_INTENTS]
    return {"anyOf": [_object(bare, {}), _object([intent.value for intent in SLOT_INTENTS], fields)]}


def _object(intents: list[str], fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"intent": {"type": "string", "enum": intents}, **fields},
        "required": ["intent"],
        "additionalProperties": False,
    }


def allowed_fields(context: UnderstandingContext) -> tuple[str, ...]:
    """The slot fields that can answer the question just asked (see :data:`_FIELDS`)."""
    return _FIELDS.get(context.expecting, _PREFERENCES)


class _Answer(BaseModel):
    """The model's answer as the schema allows it; parsed strictly (no number becomes a date)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    intent: Intent
    given_name: str | None = None
    family_name: str | None = None
    birth_date: date | None = None
    date_from: date | None = None
    date_to: date | None = None
    time_not_before: time | None = None
    time_not_after: time | None = None
    practitioner: str | None = None
    visit_type: str | None = None
    option: int | None = None
    phone: str | None = None

    @field_validator("given_name", "family_name", "practitioner", "visit_type", "phone", mode="before")
    @classmethod
    def _empty_is_absent(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value


def _fold(text: str) -> str:
    return " ".join(re.sub(r"[._-]", " ", text.casefold()).split())


def _resolve_practitioner(value: str | None, context: UnderstandingContext) -> str | None:
    """A label, schedule id, display name or alias from the directory -> its schedule id; else None."""
    if value is None:
        return None
    labels = practitioner_labels(context)
    if value in labels:
        return labels[value]
    wanted = _fold(value)
    for entry in context.practitioners:
        if wanted in (_fold(entry.schedule_id), _fold(entry.display), *map(_fold, entry.aliases)):
            return entry.schedule_id
    return None


def _resolve_visit_type(value: str | None, context: UnderstandingContext) -> str | None:
    if value is None:
        return None
    wanted = _fold(value)
    for visit in context.visit_types:
        if wanted in (_fold(visit.code), _fold(visit.display), *map(_fold, visit.aliases)):
            return visit.code
    return None


def _phone(value: str | None) -> str | None:
    digits = re.sub(r"\D", "", value or "")
    return digits if 3 <= len(digits) <= 15 else None


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.casefold().replace("'", "")))


def _mentions(words: set[str], *, digits: bool, vocabulary: frozenset[str]) -> bool:
    return (digits and any(word.isdigit() or word[:1].isdigit() for word in words)) or bool(
        words & vocabulary
    )


def _named(words: set[str], *names: str) -> bool:
    """The caller said a distinctive word of one of these names (not just "doctor" or "visit")."""
    return any((_words(name) - _GENERIC_WORDS) & words for name in names)


def _grounded(slots: Slots, utterance: str, context: UnderstandingContext) -> Slots:
    """Drop every slot the caller's words do not mention: small models invent plausible values.

    A cheap check, not understanding: a name must appear in the words, a practitioner or visit type
    must be named by a distinctive word, a date needs a day word or a number, a time a time word or a
    number. The rules and the confirmation step catch what this lets through.
    """
    words = _words(utterance)
    numbers = _mentions(words, digits=True, vocabulary=_NUMBER_WORDS)
    updates: dict[str, object] = {}
    for name in ("given_name", "family_name"):
        value = getattr(slots, name)
        if value is not None and not _words(value) <= words:
            updates[name] = None
    if slots.practitioner is not None:
        entry = next(e for e in context.practitioners if e.schedule_id == slots.practitioner)
        if not _named(words, entry.display, *entry.aliases):
            updates["practitioner"] = None
    if slots.visit_type is not None:
        visit = next(v for v in context.visit_types if v.code == slots.visit_type)
        if not _named(words, visit.code.replace("-", " "), visit.display, *visit.aliases):
            updates["visit_type"] = None
    if (slots.date_from or slots.date_to) and not (numbers or words & _DAY_WORDS):
        updates["date_from"] = updates["date_to"] = None
    if (slots.time_not_before or slots.time_not_after) and not (numbers or words & _TIME_WORDS):
        updates["time_not_before"] = updates["time_not_after"] = None
    if slots.birth_date is not None and not (numbers or words & _MONTHS):
        updates["birth_date"] = None
    if slots.phone is not None and not numbers:
        updates["phone"] = None
    return slots.model_copy(update=updates) if updates else slots


def parse_output(raw: str, context: UnderstandingContext, *, confidence: float, utterance: str) -> Understood:
    """Validate the model's raw text into an :class:`Understood` (source ``"llm"``) or raise InvalidOutput.

    Unknown practitioners and visit types become None (the model may only point into the directory);
    an option beyond what was offered, a birth date in the future and reversed ranges are invalid,
    because they show the model misread the turn rather than merely missed a detail. Slots the
    utterance does not mention are dropped (:func:`_grounded`).
    """
    try:
        answer = _Answer.model_validate_json(raw, strict=True)
    except ValidationError as error:
        kinds = sorted({str(item["type"]) for item in error.errors(include_input=False)})
        raise InvalidOutput(f"schema: {', '.join(kinds)}") from None
    if not answer.model_fields_set <= {"intent", *allowed_fields(context)}:
        raise InvalidOutput("schema: a field this question cannot answer")
    if answer.intent not in SLOT_INTENTS and answer.model_fields_set != {"intent"}:
        raise InvalidOutput("schema: slots with an intent that takes none")
    today = context.now.date()
    if answer.option is not None and not 1 <= answer.option <= len(context.offered.starts):
        raise InvalidOutput("out of range: option")
    if answer.birth_date is not None and not date(1900, 1, 1) <= answer.birth_date <= today:
        raise InvalidOutput("out of range: birth_date")
    if answer.date_from and answer.date_to and answer.date_to < answer.date_from:
        raise InvalidOutput("out of range: date_to before date_from")
    if answer.time_not_before and answer.time_not_after and answer.time_not_after < answer.time_not_before:
        raise InvalidOutput("out of range: time_not_after before time_not_before")
    try:
        slots = Slots(
            given_name=answer.given_name[:_NAME_MAX] if answer.given_name else None,
            family_name=answer.family_name[:_NAME_MAX] if answer.family_name else None,
            birth_date=answer.birth_date,
            date_from=answer.date_from,
            date_to=answer.date_to,
            time_not_before=answer.time_not_before,
            time_not_after=answer.time_not_after,
            practitioner=_resolve_practitioner(answer.practitioner, context),
            visit_type=_resolve_visit_type(answer.visit_type, context),
            option=answer.option,
            phone=_phone(answer.phone),
        )
    except ValidationError as error:
        kinds = sorted({str(item["type"]) for item in error.errors(include_input=False)})
        raise InvalidOutput(f"slots: {', '.join(kinds)}") from None
    return Understood(
        intent=answer.intent,
        slots=_grounded(slots, utterance, context),
        confidence=min(confidence, 0.3) if answer.intent is Intent.UNKNOWN else confidence,
        source="llm",
    )
