"""The escalation record: typed fields only, so a sentence, a name or a note cannot be stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from voice_agent.escalations import (
    Escalation,
    EscalationCategory,
    EscalationStatus,
    EscalationSummary,
    ResolutionOutcome,
    Urgency,
)

NOW = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def fields(**changes: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": uuid4(),
        "created_at": NOW,
        "category": "medical_question",
        "urgency": "normal",
        "session_id": uuid4(),
        "patient_id": "pat-123",
        "callback_number": "+15551230000",
    }
    values.update(changes)
    return values


def test_a_minimal_escalation_validates() -> None:
    escalation = Escalation.model_validate(fields())
    assert escalation.status is EscalationStatus.OPEN
    assert escalation.category is EscalationCategory.MEDICAL_QUESTION
    assert escalation.summary().model_dump().keys() == EscalationSummary.model_fields.keys()


@pytest.mark.parametrize(
    "changes",
    [
        {"note": "caller sounded upset about her results"},  # no free-text field exists
        {"transcript": "I need to talk to someone"},
        {"category": "caller wants a refill of lisinopril"},
        {"category": "other"},
        {"urgency": "very urgent please"},
        {"callback_number": "call me at home after 5"},
        {"callback_number": "555-123-0000"},  # not normalised to E.164
        {"callback_number": "+1 555 123 0000"},
        {"callback_number": "+15551230000 ext 12"},
        {"callback_number": 15551230000},  # numbers are not coerced
        {"patient_id": "Jane Doe"},
        {"patient_id": "555-123-0000"},  # a phone number where an id belongs
        {"patient_id": "1980-04-02"},  # a date of birth where an id belongs
        {"status": "waiting for Dr. Smith"},
        {"outcome": "told her to take ibuprofen", "status": "resolved"},
        {"claimed_by": "Jane Doe", "status": "claimed", "claimed_at": NOW},
        {"claimed_by": "5551230000", "status": "claimed", "claimed_at": NOW},
        {"created_at": datetime(2025, 3, 3, 9, 0)},  # naive time
        {"created_at": "2025-03-03T09:00:00Z"},  # strict: a real datetime only
    ],
)
def test_free_text_and_malformed_values_are_rejected(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Escalation.model_validate(fields(**changes))


def test_the_summary_has_no_phi_fields() -> None:
    for name in ("patient_id", "callback_number"):
        assert name not in EscalationSummary.model_fields
        with pytest.raises(ValidationError):
            EscalationSummary.model_validate(fields())  # extra="forbid" refuses them


@pytest.mark.parametrize("category", ["emergency", "crisis"])
def test_emergency_and_crisis_are_always_urgent(category: str) -> None:
    with pytest.raises(ValidationError, match="always urgent"):
        Escalation.model_validate(fields(category=category, urgency="normal"))
    assert Escalation.model_validate(fields(category=category, urgency="urgent")).urgency is Urgency.URGENT


@pytest.mark.parametrize(
    "changes",
    [
        {"status": "claimed"},  # claimed without a claimant
        {"status": "open", "claimed_by": "jdoe", "claimed_at": NOW},
        {"status": "claimed", "claimed_by": "jdoe", "claimed_at": NOW, "outcome": "booked"},
        {"status": "resolved", "claimed_by": "jdoe", "claimed_at": NOW, "resolved_by": "jdoe"},
    ],
)
def test_status_and_its_fields_agree(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="do not match status"):
        Escalation.model_validate(fields(**changes))


def test_a_resolved_escalation_states_who_when_and_how() -> None:
    resolved = Escalation.model_validate(
        fields(
            status="resolved",
            claimed_by="jdoe",
            claimed_at=NOW,
            resolved_by="jdoe",
            resolved_at=NOW,
            outcome="left_message",
        )
    )
    assert resolved.outcome is ResolutionOutcome.LEFT_MESSAGE


def test_repr_and_str_leave_the_phi_out() -> None:
    escalation = Escalation.model_validate(fields(patient_id="zqpat42", callback_number="+15559870001"))
    for text in (repr(escalation), str(escalation), f"{escalation}"):
        assert "zqpat42" not in text and "5559870001" not in text
        assert str(escalation.id) in text


def test_escalations_are_immutable() -> None:
    escalation = Escalation.model_validate(fields())
    with pytest.raises(ValidationError):
        escalation.status = EscalationStatus.RESOLVED
