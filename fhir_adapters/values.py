"""What the scheduling operations hand back: small immutable values, never a FHIR record.

The dialogue speaks only from these; each field is something the caller may hear once verified.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time


@dataclass(frozen=True)
class PatientRef:
    """An opaque handle on a verified patient. The dialogue binds it to the call; it never reads it."""

    id: str

    def __repr__(self) -> str:
        return "PatientRef(<opaque>)"

    @property
    def reference(self) -> str:
        return f"Patient/{self.id}"


@dataclass(frozen=True)
class GivenSpelling:
    """A given name the caller spelled (``letters``) or keyed one press per letter (``keys``): compared
    exactly with the record's, where a heard given name is only compared by sound. Its ``repr`` holds
    no letters (it may reach a log line through an exception)."""

    letters: str | None = None
    keys: str | None = None

    def __repr__(self) -> str:
        return f"GivenSpelling(letters={self.letters is not None}, keys={self.keys is not None})"


@dataclass(frozen=True)
class PatientIdentity:
    """What the front desk sees of the patient behind an escalation, read from FHIR when the escalation
    is opened and never stored: the name (as the record gives it) and the birth date. ``repr`` hides
    both, so a stray log line of one leaks nothing."""

    name: str = field(repr=False)
    birth_date: date | None = field(repr=False)


@dataclass(frozen=True)
class VisitType:
    system: str | None
    code: str
    display: str

    @property
    def token(self) -> str:
        return f"{self.system}|{self.code}" if self.system else self.code


@dataclass(frozen=True)
class PractitionerSchedule:
    """One bookable calendar, as the clinic publishes it in a Schedule resource."""

    schedule_id: str
    practitioner: str  # display name from Schedule.actor, e.g. "Dr. Amara Okafor"
    practitioner_reference: str | None
    visit_types: tuple[VisitType, ...]
    #: The end of the Schedule's ``planningHorizon``: slots are published up to here (None: not said).
    planned_until: datetime | None = None


@dataclass(frozen=True)
class ClinicDirectory:
    schedules: tuple[PractitionerSchedule, ...]

    def schedule(self, schedule_id: str) -> PractitionerSchedule | None:
        return next((s for s in self.schedules if s.schedule_id == schedule_id), None)

    @property
    def visit_types(self) -> tuple[VisitType, ...]:
        seen: dict[str, VisitType] = {}
        for schedule in self.schedules:
            for visit in schedule.visit_types:
                seen.setdefault(visit.token, visit)
        return tuple(seen.values())


@dataclass(frozen=True)
class TimeOfDay:
    """A window on the clinic's local clock: "afternoon", "any time after 4", "before 10"."""

    not_before: time | None = None
    not_after: time | None = None

    def admits(self, local: time) -> bool:
        if self.not_before is not None and local < self.not_before:
            return False
        return not (self.not_after is not None and local >= self.not_after)


MORNING = TimeOfDay(not_after=time(12, 0))
AFTERNOON = TimeOfDay(not_before=time(12, 0), not_after=time(17, 0))
EVENING = TimeOfDay(not_before=time(17, 0))


@dataclass(frozen=True)
class SlotOffer:
    slot_id: str
    schedule_id: str
    practitioner: str
    start: datetime
    end: datetime
    visit_types: tuple[VisitType, ...]


@dataclass(frozen=True)
class AppointmentInfo:
    appointment_id: str
    status: str
    start: datetime | None
    end: datetime | None
    practitioner: str | None
    visit_type: VisitType | None
    slot_ids: tuple[str, ...]
