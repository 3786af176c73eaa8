"""What the agent may touch: four resource types, each with an allowlist of interactions.

Checked before any network traffic, so a request outside scope never reaches the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum

from .errors import FhirNotAllowed


class Interaction(StrEnum):
    READ = "read"
    SEARCH = "search"
    CREATE = "create"
    UPDATE = "update"


ALLOWED: Mapping[str, frozenset[Interaction]] = {
    "Patient": frozenset({Interaction.SEARCH, Interaction.READ}),
    "Schedule": frozenset({Interaction.SEARCH, Interaction.READ}),
    "Slot": frozenset({Interaction.SEARCH, Interaction.READ, Interaction.UPDATE}),
    "Appointment": frozenset({Interaction.SEARCH, Interaction.READ, Interaction.CREATE, Interaction.UPDATE}),
}

#: Elements a resource cannot be valid without; always requested so strict parsing can succeed.
REQUIRED_ELEMENTS: Mapping[str, tuple[str, ...]] = {
    "Patient": (),
    "Schedule": ("actor",),
    "Slot": ("schedule", "status", "start", "end"),
    "Appointment": ("status", "participant"),
}

#: Elements the agent may ever ask for. Anything else (address, telecom, identifier...) is refused.
ALLOWED_ELEMENTS: Mapping[str, frozenset[str]] = {
    "Patient": frozenset({"name", "birthDate"}),
    "Schedule": frozenset({"actor", "serviceType", "active", "planningHorizon"}),
    "Slot": frozenset({"schedule", "status", "start", "end", "serviceType"}),
    "Appointment": frozenset(
        {"status", "participant", "start", "end", "slot", "serviceType", "identifier", "cancelationReason"}
    ),
}


#: Search parameters per type. A Patient search must also narrow to one person (see ``check_search``).
ALLOWED_SEARCH_PARAMS: Mapping[str, frozenset[str]] = {
    "Patient": frozenset({"_id", "family", "given", "birthdate", "phone"}),
    "Schedule": frozenset({"_id", "active", "actor", "service-type"}),
    "Slot": frozenset({"_id", "schedule", "status", "start", "service-type"}),
    "Appointment": frozenset({"_id", "patient", "status", "date", "slot", "identifier"}),
}

#: A Patient search names either the record (``_id``) or a family name with a birth date: never a roster.
_PATIENT_NARROWING = (frozenset({"_id"}), frozenset({"family", "birthdate"}))


def check(resource_type: str, interaction: Interaction) -> None:
    if interaction not in ALLOWED.get(resource_type, frozenset()):
        raise FhirNotAllowed(resource_type=resource_type if resource_type in ALLOWED else None)


def check_search(resource_type: str, criteria: Iterable[tuple[str, str]]) -> None:
    check(resource_type, Interaction.SEARCH)
    names = {name for name, _ in criteria}
    if names - ALLOWED_SEARCH_PARAMS[resource_type]:
        raise FhirNotAllowed(
            "That FHIR search parameter is outside the agent's scope.", resource_type=resource_type
        )
    if resource_type == "Patient" and not any(required <= names for required in _PATIENT_NARROWING):
        raise FhirNotAllowed("A patient search must name one person.", resource_type=resource_type)


def elements_for(resource_type: str, wanted: Iterable[str]) -> tuple[str, ...]:
    """The ``_elements`` list for a request: what was asked for plus what validity requires, nothing more."""
    wanted = tuple(wanted)
    extra = set(wanted) - ALLOWED_ELEMENTS[resource_type]
    if extra:
        raise FhirNotAllowed("That FHIR element is outside the agent's scope.", resource_type=resource_type)
    # ``id`` is always returned; naming it keeps ``_elements`` non-empty when nothing else is needed.
    return tuple(sorted({*REQUIRED_ELEMENTS[resource_type], *wanted})) or ("id",)
