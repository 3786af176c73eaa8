"""The escalation record: a closed, typed hand-off to front-desk staff with no room for free text.

Like the audit events, every field is an enum, a UUID, a timestamp or a string held to a narrow grammar
(a FHIR id, an E.164 number, a staff account id). There is no note, summary or transcript field: what
the caller said stays in the call's memory and dies with it; staff call back and ask.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Self
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from voice_agent.audit.events import ActorId, FhirId, UtcTime


class EscalationCategory(StrEnum):
    """Why the agent handed the call over."""

    EMERGENCY = "emergency"
    CRISIS = "crisis"
    MEDICAL_QUESTION = "medical_question"
    VERIFICATION_FAILED = "verification_failed"
    CALLER_REQUEST = "caller_request"
    OTHER_PERSON_REQUEST = "other_person_request"
    RULE_CHANGE_ATTEMPT = "rule_change_attempt"
    SYSTEM_ERROR = "system_error"
    CANNOT_COMPLETE = "cannot_complete"


class Urgency(StrEnum):
    URGENT = "urgent"
    NORMAL = "normal"


class EscalationStatus(StrEnum):
    """``open`` -> ``claimed`` (one staff member owns it) -> ``resolved``; never backwards."""

    OPEN = "open"
    CLAIMED = "claimed"
    RESOLVED = "resolved"


class ResolutionOutcome(StrEnum):
    """What staff did about it: a code, never a note."""

    CALLED_BACK = "called_back"
    NO_ANSWER = "no_answer"
    LEFT_MESSAGE = "left_message"
    BOOKED = "booked"
    RESOLVED_OTHER = "resolved_other"
    DUPLICATE = "duplicate"


#: Categories that are urgent whatever the caller of ``create`` asked for (a safety rule, not a default).
ALWAYS_URGENT: frozenset[EscalationCategory] = frozenset(
    {EscalationCategory.EMERGENCY, EscalationCategory.CRISIS}
)

#: E.164: ``+``, a country code that does not start with 0, at most 15 digits in all. The dialogue
#: normalises what telephony gave it; anything else (a sentence, an extension, letters) is refused.
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
CallbackNumber = Annotated[str, Field(pattern=E164_PATTERN)]


class _EscalationFields(BaseModel):
    """What the queue may show without decrypting anything: no PHI."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID
    created_at: UtcTime
    category: EscalationCategory
    urgency: Urgency
    session_id: UUID
    status: EscalationStatus = EscalationStatus.OPEN
    claimed_by: ActorId | None = None
    claimed_at: UtcTime | None = None
    resolved_by: ActorId | None = None
    resolved_at: UtcTime | None = None
    outcome: ResolutionOutcome | None = None
    #: The stored row fails its integrity tag (changed outside the store): what is shown is not what the
    #: database says but a safe reading of it, open and urgent, so a forged "resolved" or "normal" does
    #: not hide a call; staff see a warning. Never stored: the store computes it at every read.
    tampered: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.category in ALWAYS_URGENT and self.urgency is not Urgency.URGENT:
            raise ValueError("emergency and crisis escalations are always urgent")
        claimed = (self.claimed_by, self.claimed_at)
        resolved = (self.resolved_by, self.resolved_at, self.outcome)
        if self.status is EscalationStatus.OPEN:
            ok = all(v is None for v in (*claimed, *resolved))
        elif self.status is EscalationStatus.CLAIMED:
            ok = all(v is not None for v in claimed) and all(v is None for v in resolved)
        else:
            ok = all(v is not None for v in (*claimed, *resolved))
        if not ok:
            raise ValueError(f"claim/resolution fields do not match status {self.status.value}")
        return self


class EscalationSummary(_EscalationFields):
    """One queue entry: sortable and safe to show or send to a browser list without a view event."""


class Escalation(_EscalationFields):
    """The full hand-off, PHI included. Only ``EscalationStore.get`` (audited) returns one from storage.

    ``repr``/``str`` leave the PHI fields out, so a stray log line of an escalation leaks nothing.
    """

    #: The verified caller's FHIR Patient id (``Patient/<id>``), if verification succeeded.
    patient_id: FhirId | None = Field(default=None, repr=False)
    callback_number: CallbackNumber | None = Field(default=None, repr=False)

    def summary(self) -> EscalationSummary:
        return EscalationSummary.model_validate(self.model_dump(exclude={"patient_id", "callback_number"}))
