"""The gateway's result checks on their own: FHIR's search semantics for every criterion the gateway
sends, read leniently where servers may differ, strictly where only a wrong answer could differ."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_adapters import FhirNotAllowed
from fhir_adapters.criteria import compile_criteria, elements_checked

SLOT = {
    "resourceType": "Slot",
    "id": "slot-park-1",
    "schedule": {"reference": "Schedule/sched-park"},
    "status": "free",
    "start": "2026-12-08T09:00:00-05:00",
    "end": "2026-12-08T09:30:00-05:00",
    "serviceType": [{"coding": [{"system": "urn:visit", "code": "follow-up"}]}],
}
PATIENT = {
    "resourceType": "Patient",
    "id": "pat-003",
    "name": [{"family": "Muñoz", "given": ["José"]}, {"family": "O'Brien-Ng", "given": ["Jo"]}],
    "birthDate": "1955-11-02",
}
APPOINTMENT = {
    "resourceType": "Appointment",
    "id": "appt-1",
    "status": "booked",
    "start": "2026-12-08T14:00:00Z",
    "slot": [{"reference": "https://fhir.example/R4/Slot/slot-park-1/_history/3"}],
    "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:abc"}],
    "participant": [
        {"actor": {"reference": "Patient/pat-003"}},
        {"actor": {"reference": "Practitioner/prac-park", "display": "Dr. Daniel Park"}},
    ],
}


def admits(resource: dict[str, Any], *criteria: tuple[str, str]) -> bool:
    return compile_criteria(resource["resourceType"], criteria).admits(resource)


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ((("schedule", "Schedule/sched-park"),), True),
        ((("schedule", "Schedule/sched-okafor,Schedule/sched-park"),), True),
        ((("schedule", "sched-park"),), True),  # a bare id, of the one type a schedule can be
        ((("schedule", "Schedule/sched-okafor"),), False),  # the known bug: another practitioner's slot
        ((("status", "free"),), True),
        ((("status", "FREE"),), True),
        ((("status", "busy"),), False),
        ((("service-type", "urn:visit|follow-up"),), True),
        ((("service-type", "follow-up"),), True),
        ((("service-type", "|follow-up"),), False),  # no system asked, but the coding has one
        ((("service-type", "urn:other|follow-up"),), False),
        ((("start", "ge2026-12-08T09:00:00-05:00"),), True),
        ((("start", "ge2026-12-08T14:00:00Z"),), True),  # the same instant in another zone
        ((("start", "ge2026-12-08T09:00:01-05:00"),), False),
        ((("start", "lt2026-12-08T09:00:00-05:00"),), False),
        ((("start", "lt2026-12-08T09:00:00.000001-05:00"),), True),
        ((("start", "ge2026-12-08T00:00:00-05:00"), ("start", "lt2026-12-09T00:00:00-05:00")), True),
        ((("start", "ge2026-12-09T00:00:00-05:00"), ("start", "lt2026-12-10T00:00:00-05:00")), False),
        ((("start", "eq2026-12-08T09:00-05:00"),), True),  # minute precision spans the minute
        ((("_id", "slot-park-1,slot-park-2"),), True),
        ((("_id", "slot-park-2"),), False),
    ],
)
def test_slot_criteria(criteria: tuple[tuple[str, str], ...], expected: bool) -> None:
    assert admits(SLOT, *criteria) is expected


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        ((("family", "Muñoz"), ("birthdate", "1955-11-02")), True),
        ((("family", "munoz"),), True),  # case- and accent-blind
        ((("family", "Mu"),), True),  # a prefix
        ((("family", "noz"),), False),  # not a prefix: a server matching substrings sent it
        ((("family", "obrien"),), True),  # punctuation-blind, any of the names
        ((("family", "b,c,m"),), True),
        ((("family", "b,c,d"),), False),
        ((("given", "jos"),), True),
        ((("birthdate", "1955-11-03"),), False),
        ((("birthdate", "1955-11"),), True),
        ((("birthdate", "1955"),), True),
        ((("birthdate", "ge1955-11-02"),), True),
        ((("birthdate", "gt1955-11-02"),), False),
        ((("birthdate", "lt1955-11-03"),), True),
        ((("birthdate", "ne1955-11-02"),), False),
        ((("_id", "pat-003"), ("phone", "+1-555-0199")), True),  # phone is not judged (never loaded)
    ],
)
def test_patient_criteria(criteria: tuple[tuple[str, str], ...], expected: bool) -> None:
    assert admits(PATIENT, *criteria) is expected


def test_a_partial_birth_date_is_not_within_a_day() -> None:
    assert not admits({**PATIENT, "birthDate": "1955"}, ("birthdate", "1955-11-02"))
    assert not admits({**PATIENT, "birthDate": None}, ("birthdate", "1955-11-02"))


@pytest.mark.parametrize(
    ("criteria", "expected"),
    [
        (
            (("patient", "Patient/pat-003"), ("status", "booked"), ("date", "ge2026-12-08T08:59:00-05:00")),
            True,
        ),
        ((("patient", "pat-003"),), True),
        ((("patient", "Patient/pat-004"),), False),
        ((("patient", "Practitioner/prac-park"),), False),  # a patient search never matches a practitioner
        ((("patient", "prac-park"),), False),
        ((("date", "ge2026-12-08T09:00:01-05:00"),), False),
        ((("slot", "Slot/slot-park-1"),), True),  # an absolute, versioned reference names the same slot
        ((("slot", "Slot/slot-park-2"),), False),
        ((("identifier", "urn:ietf:rfc:3986|urn:uuid:abc"),), True),
        ((("identifier", "urn:ietf:rfc:3986|urn:uuid:abd"),), False),
        ((("status", "cancelled"),), False),
    ],
)
def test_appointment_criteria(criteria: tuple[tuple[str, str], ...], expected: bool) -> None:
    assert admits(APPOINTMENT, *criteria) is expected


def test_schedule_criteria() -> None:
    schedule = {
        "resourceType": "Schedule",
        "id": "sched-park",
        "active": True,
        "actor": [{"reference": "Practitioner/prac-park"}],
    }
    assert admits(schedule, ("active", "true"), ("_id", "sched-park,sched-okafor"))
    assert not admits({**schedule, "active": False}, ("active", "true"))
    assert not admits({key: v for key, v in schedule.items() if key != "active"}, ("active", "true"))
    assert admits(schedule, ("actor", "Practitioner/prac-park"))
    assert not admits(schedule, ("actor", "Practitioner/prac-okafor"))


def test_another_type_is_never_admitted() -> None:
    assert not compile_criteria("Slot", []).admits({**PATIENT})


@pytest.mark.parametrize(
    ("resource_type", "criterion"),
    [
        ("Slot", ("start", "sa2026-12-08T09:00:00Z")),  # a prefix the checks do not know
        ("Slot", ("start", "ge2026-12-08T09:00:00")),  # a time without a zone: which day is it?
        ("Slot", ("start", "ge2026-12-08")),  # a day on an instant: in whose zone?
        ("Patient", ("birthdate", "1955-11-02T00:00:00Z")),
        ("Patient", ("birthdate", "1955-13-02")),
        ("Slot", ("schedule:missing", "true")),
    ],
)
def test_a_criterion_the_gateway_cannot_judge_is_refused_before_it_is_sent(
    resource_type: str, criterion: tuple[str, str]
) -> None:
    with pytest.raises(FhirNotAllowed):
        compile_criteria(resource_type, [criterion])


def test_the_elements_each_criterion_is_judged_on() -> None:
    slots = [("schedule", "Schedule/x"), ("status", "free"), ("start", "ge2026-12-08T09:00:00Z")]
    assert elements_checked("Slot", slots) == ("schedule", "start", "status")
    assert elements_checked("Patient", [("family", "x"), ("birthdate", "1955-11-02")]) == (
        "birthDate",
        "name",
    )
    assert elements_checked("Patient", [("_id", "x"), ("phone", "555")]) == ()
    assert elements_checked("Appointment", [("identifier", "a|b")]) == ("identifier",)
