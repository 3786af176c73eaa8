"""The audit event model: PHI (names, phone numbers, dates of birth, free sentences) cannot be written."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from fhir_adapters.gateway import Purpose
from fhir_adapters.scope import Interaction
from voice_agent.audit import AuditAction, AuditEvent, AuditPurpose

NAME = "John Smith"
PHONES = ["+1 (555) 010-0199", "555-010-0199", "555.010.0199", "+15550100199", "1-555-010-0199"]
DOBS = ["1980-04-12", "04/12/1980", "12.04.1980"]
SENTENCE = "Caller says she has chest pain and wants a callback"
PHI_SAMPLES = [NAME, "Smith, John", SENTENCE, *PHONES, *DOBS]


def base(**changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "time": datetime(2026, 11, 23, 15, 0, tzinfo=UTC),
        "actor": {"kind": "service", "id": "voice-agent"},
        "purpose": "book",
        "action": "fhir.update",
        "outcome": "success",
        "resource_type": "Appointment",
        "resource_ids": ("appt-123",),
        "session_id": uuid4(),
        "http_status": 200,
    }
    event.update(changes)
    return event


def test_a_full_event_round_trips_through_json() -> None:
    event = AuditEvent.model_validate(
        base(error="FhirConflict", duration_seconds=1.5, end_reason=None, withheld_ids=2)
    )
    assert AuditEvent.model_validate_json(event.model_dump_json()) == event
    with pytest.raises(ValidationError):
        event.outcome = "denied"  # frozen


def test_times_are_aware_and_stored_in_utc() -> None:
    eastern = timezone(timedelta(hours=-5))
    event = AuditEvent.model_validate(base(time=datetime(2026, 11, 23, 10, 0, tzinfo=eastern)))
    assert event.time == datetime(2026, 11, 23, 15, 0, tzinfo=UTC)
    assert event.time.utcoffset() == timedelta(0)
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(base(time=datetime(2026, 11, 23, 10, 0)))


def test_every_gateway_purpose_and_interaction_has_an_audit_equivalent() -> None:
    assert {p.value for p in Purpose} <= {p.value for p in AuditPurpose}
    assert {f"fhir.{i.value}" for i in Interaction} <= {a.value for a in AuditAction}
    for extra in ("call-session", "audit-maintenance", "staff-console"):
        assert AuditPurpose(extra)


def test_a_refused_request_for_a_type_outside_scope_is_recordable() -> None:
    event = AuditEvent.model_validate(
        base(action="fhir.search", outcome="denied", resource_type="Observation", resource_ids=())
    )
    assert event.resource_type == "Observation"
    assert AuditEvent.model_validate(base(resource_type=None)).resource_type is None


def _set(event: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    if path == "actor.id":
        event["actor"] = {"kind": "staff", "id": value}
    elif path == "actor.kind":
        event["actor"] = {"kind": value, "id": "frontdesk1"}
    elif path == "resource_ids":
        event["resource_ids"] = ("appt-123", value)
    elif path == "anchor_hash":
        event.update(action="audit.purge", purged_through_seq=1, purged_count=1, anchor_hash=value)
    else:
        event[path] = value
    return event


TEXT_FIELDS = [
    "actor.id",
    "actor.kind",
    "purpose",
    "action",
    "outcome",
    "resource_type",
    "resource_ids",
    "session_id",
    "http_status",
    "error",
    "duration_seconds",
    "end_reason",
    "phi_retained",
    "anchor_hash",
    "time",
    "range_start",
    "event_count",
]


@pytest.mark.parametrize("value", PHI_SAMPLES)
@pytest.mark.parametrize("path", TEXT_FIELDS)
def test_no_field_accepts_a_name_a_phone_number_a_birth_date_or_a_sentence(path: str, value: str) -> None:
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(_set(base(), path, value))


@pytest.mark.parametrize("field", ["note", "reason", "text", "transcript", "caller_name", "phone", "details"])
def test_unknown_fields_are_refused(field: str) -> None:
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(base(**{field: "anything"}))


def test_single_words_and_digit_strings_are_held_to_their_grammar() -> None:
    """A surname is not a FHIR type; a bare phone number is not an account id."""
    for bad in ("Smith", "Jones", "Patientx", "patient"):
        with pytest.raises(ValidationError):
            AuditEvent.model_validate(base(resource_type=bad))
    for bad in ("5550100199", "15550100199", "Jane.Doe", "jane doe"):
        with pytest.raises(ValidationError):
            AuditEvent.model_validate(_set(base(), "actor.id", bad))
    assert AuditEvent.model_validate(_set(base(), "actor.id", "jdoe@clinic")).actor.id == "jdoe@clinic"
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(base(error="Fhir Not Found"))


def test_ids_and_lists_are_bounded() -> None:
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(base(resource_ids=("x" * 65,)))
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(base(resource_ids=tuple(f"id-{n}" for n in range(501))))
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(base(http_status=1000))
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(base(duration_seconds=-1.0))
    with pytest.raises(ValidationError):  # a phone number written as a number
        AuditEvent.model_validate(base(event_count=5550100199))


def test_purge_details_belong_to_purge_events() -> None:
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(base(purged_count=3))
    with pytest.raises(ValidationError):
        AuditEvent.model_validate(base(action="audit.purge", purged_count=3))
    purge = AuditEvent.model_validate(
        base(action="audit.purge", purged_through_seq=9, purged_count=9, anchor_hash="ab" * 32)
    )
    assert purge.purged_count == 9


def _string_nodes(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if node.get("type") == "string" else []
        return found + [n for value in node.values() for n in _string_nodes(value)]
    if isinstance(node, list):
        return [n for value in node for n in _string_nodes(value)]
    return []


def test_structurally_no_string_anywhere_is_unconstrained() -> None:
    """Walk the JSON schema: every string is an enum, a constant, a pattern, a UUID or a timestamp."""
    strings = _string_nodes(AuditEvent.model_json_schema())
    assert strings
    for node in strings:
        constrained = (
            "enum" in node
            or "const" in node
            or "pattern" in node
            or node.get("format") in ("uuid", "date-time")
        )
        assert constrained, node
