"""The synthetic clinic: reproducible FHIR R4 transaction bundles for a fictional practice.

``build_clinic(seed=..., today=...)`` returns the clinic as Python objects plus the bundles to load, in load
order: practitioners, patients, schedules, slots (split into ``slots-1``, ``slots-2``, ... when large) and
appointments. Every entry is a ``PUT Type/id`` with a client-assigned id, so references across bundles
resolve and loading twice changes nothing. The same seed and the same ``today`` give byte-identical JSON.

Everything is fictional: names, birth dates, 555-01xx phone numbers, example.org e-mail addresses,
invented streets and towns, and MRNs under a made-up OID. There are no SSNs.

One appointment lies in the past: the "past-appointment" patient had a visit at 10:00 on the last weekday
before ``today``. It is still ``booked`` (clinics often never update the status), its slot is busy and
lies outside the generated range, so the agent has to filter on date rather than trust the status.
"""

from __future__ import annotations

import math
import random
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from voice_agent.sandbox import roster

VISIT_TYPE_SYSTEM = "urn:voice-agent:synthetic-clinic:visit-type"
MRN_SYSTEM = "urn:oid:1.2.3.4.5.1"
SYNTHETIC_TAG_SYSTEM = "urn:voice-agent:synthetic-clinic"
MAX_BUNDLE_ENTRIES = 1000
POOL_PATIENTS = 30
BUSY_FRACTION = 0.2
SESSIONS: tuple[tuple[time, time], ...] = ((time(9, 0), time(12, 0)), (time(13, 0), time(17, 0)))

VISIT_TYPES: dict[str, str] = {
    "new-patient": "New patient visit",
    "follow-up": "Follow-up visit",
    "annual-physical": "Annual physical",
    "vaccination": "Vaccination",
    "telehealth": "Telehealth visit",
}


@dataclass(frozen=True)
class _Practitioner:
    key: str  # "okafor": ids are prac-<key>, sched-<key>, slot-<key>-...
    given: str
    family: str
    gender: str
    visit_types: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"prac-{self.key}"

    @property
    def schedule_id(self) -> str:
        return f"sched-{self.key}"

    @property
    def display(self) -> str:
        return f"Dr. {self.given} {self.family}"


PRACTITIONERS: tuple[_Practitioner, ...] = (
    _Practitioner(
        "okafor", "Amara", "Okafor", "female", ("new-patient", "follow-up", "annual-physical", "vaccination")
    ),
    _Practitioner("park", "Daniel", "Park", "male", ("new-patient", "follow-up", "annual-physical")),
    _Practitioner(
        "hernandez-ruiz",
        "Sofía",
        "Hernández-Ruiz",
        "female",
        ("new-patient", "follow-up", "annual-physical", "vaccination", "telehealth"),
    ),
    _Practitioner("oconnell", "Liam", "O'Connell", "male", ("follow-up", "vaccination", "telehealth")),
)


@dataclass(frozen=True)
class SyntheticPatient:
    id: str
    given: str
    family: str
    birth_date: date
    phone: str
    tags: frozenset[str]
    given_names: tuple[str, ...] = field(default=())  # every given name as stored ("Anna", "Maria")

    @property
    def full_name(self) -> str:
        return " ".join((*(self.given_names or (self.given,)), self.family))


@dataclass(frozen=True)
class SyntheticSchedule:
    id: str
    practitioner_id: str
    practitioner_display: str
    visit_types: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class SyntheticAppointment:
    id: str
    patient_id: str
    slot_id: str
    schedule_id: str
    start: datetime
    visit_type: str


@dataclass(frozen=True)
class SyntheticClinic:
    today: date
    timezone: str
    patients: tuple[SyntheticPatient, ...]
    schedules: tuple[SyntheticSchedule, ...]
    appointments: tuple[SyntheticAppointment, ...]
    bundles: tuple[tuple[str, dict[str, Any]], ...]
    seed: int = 7
    weeks: int = 4
    slot_minutes: int = 30

    def patient(self, tag: str) -> SyntheticPatient:
        for patient in self.patients:
            if tag in patient.tags:
                return patient
        raise KeyError(tag)

    def patients_tagged(self, tag: str) -> tuple[SyntheticPatient, ...]:
        return tuple(p for p in self.patients if tag in p.tags)

    def resources(self, resource_type: str | None = None) -> list[dict[str, Any]]:
        """Every resource in every bundle, in load order, optionally only those of one type."""
        return [
            entry["resource"]
            for _, bundle in self.bundles
            for entry in bundle["entry"]
            if resource_type is None or entry["resource"]["resourceType"] == resource_type
        ]

    def manifest(self) -> dict[str, Any]:
        slots = self.resources("Slot")
        busy = sum(1 for s in slots if s["status"] == "busy")
        return {
            "generator": "voice_agent.sandbox.clinic",
            "seed": self.seed,
            "today": self.today.isoformat(),
            "timezone": self.timezone,
            "weeks": self.weeks,
            "slot_minutes": self.slot_minutes,
            "fictional": True,
            "bundles": [
                {"name": name, "file": bundle_filename(i, name), "entries": len(bundle["entry"])}
                for i, (name, bundle) in enumerate(self.bundles, start=1)
            ],
            "schedules": [
                {
                    "id": s.id,
                    "practitioner_id": s.practitioner_id,
                    "practitioner_display": s.practitioner_display,
                    "visit_types": [{"code": code, "display": display} for code, display in s.visit_types],
                }
                for s in self.schedules
            ],
            "patients": [
                {
                    "id": p.id,
                    "given": p.given,
                    "given_names": list(p.given_names),
                    "family": p.family,
                    "birth_date": p.birth_date.isoformat(),
                    "phone": p.phone,
                    "tags": sorted(p.tags),
                }
                for p in self.patients
            ],
            "appointments": [
                {
                    "id": a.id,
                    "patient_id": a.patient_id,
                    "slot_id": a.slot_id,
                    "schedule_id": a.schedule_id,
                    "start": a.start.isoformat(),
                    "visit_type": a.visit_type,
                    "past": a.start.date() < self.today,
                }
                for a in self.appointments
            ],
            "slots": {"total": len(slots), "free": len(slots) - busy, "busy": busy},
        }


def bundle_filename(index: int, name: str) -> str:
    """File name for the ``index``-th bundle (1-based) in load order, e.g. ``01-practitioners.json``."""
    return f"{index:02d}-{name}.json"


def visit_type_concept(code: str) -> dict[str, Any]:
    display = VISIT_TYPES[code]
    return {"coding": [{"system": VISIT_TYPE_SYSTEM, "code": code, "display": display}], "text": display}


def build_clinic(
    *,
    seed: int = 7,
    today: date | None = None,
    weeks: int = 4,
    timezone: str = "America/New_York",
    slot_minutes: int = 30,
) -> SyntheticClinic:
    """Build the clinic. ``today`` defaults to the current date in the clinic's time zone."""
    if weeks < 1:
        raise ValueError("weeks must be at least 1")
    if not 5 <= slot_minutes <= 180:
        raise ValueError("slot_minutes must be between 5 and 180")
    zone = ZoneInfo(timezone)
    if today is None:
        today = datetime.now(zone).date()

    patients, patient_resources = _patients(seed)
    schedules = tuple(
        SyntheticSchedule(
            id=p.schedule_id,
            practitioner_id=p.id,
            practitioner_display=p.display,
            visit_types=tuple((code, VISIT_TYPES[code]) for code in p.visit_types),
        )
        for p in PRACTITIONERS
    )
    first_day = today + timedelta(days=1)
    horizon_end = first_day + timedelta(weeks=weeks)
    slots = _slots(first_day, horizon_end, zone, slot_minutes)

    rng = random.Random(f"synthetic-clinic:{seed}:appointments")
    appointments: list[SyntheticAppointment] = []
    busy: set[str] = set()
    by_id = {s.id: s for s in slots}

    # The past appointment: 10:00 on the last weekday before today, with Dr. Park, still "booked".
    past_day = today - timedelta(days=1)
    while past_day.weekday() >= 5:
        past_day -= timedelta(days=1)
    past_slot = _Slot(PRACTITIONERS[1], _local(past_day, time(10, 0), zone), slot_minutes)
    all_slots = [past_slot, *slots]
    busy.add(past_slot.id)

    candidates = list(slots)
    rng.shuffle(candidates)
    for patient in patients:
        if roster.WITH_APPOINTMENTS not in patient.tags:
            continue
        taken: set[datetime] = set()
        if roster.PAST_APPOINTMENT in patient.tags:
            appointments.append(_appointment(patient, past_slot, "follow-up"))
        for _ in range(rng.randint(1, 3)):
            slot = next(c for c in candidates if c.id not in busy and c.start not in taken)
            busy.add(slot.id)
            taken.add(slot.start)
            appointments.append(_appointment(patient, slot, rng.choice(slot.practitioner.visit_types)))
    appointments.sort(key=lambda a: (a.start, a.schedule_id))
    appointments = [
        SyntheticAppointment(
            id=f"appt-{i:03d}",
            patient_id=a.patient_id,
            slot_id=a.slot_id,
            schedule_id=a.schedule_id,
            start=a.start,
            visit_type=a.visit_type,
        )
        for i, a in enumerate(appointments, start=1)
    ]

    # Block further slots (lunch meetings, admin time) until about BUSY_FRACTION of the range is busy.
    free = [s for s in slots if s.id not in busy]
    blocked = max(0, round(BUSY_FRACTION * len(slots)) - (len(busy) - 1))
    busy.update(s.id for s in rng.sample(free, min(blocked, len(free))))

    bundles: list[tuple[str, dict[str, Any]]] = [
        ("practitioners", _bundle([_practitioner_resource(p) for p in PRACTITIONERS])),
        ("patients", _bundle(patient_resources)),
        ("schedules", _bundle([_schedule_resource(p, first_day, horizon_end, zone) for p in PRACTITIONERS])),
    ]
    slot_resources = [_slot_resource(s, "busy" if s.id in busy else "free") for s in all_slots]
    chunks = max(1, math.ceil(len(slot_resources) / MAX_BUNDLE_ENTRIES))
    size = math.ceil(len(slot_resources) / chunks)
    for i in range(chunks):
        name = "slots" if chunks == 1 else f"slots-{i + 1}"
        bundles.append((name, _bundle(slot_resources[i * size : (i + 1) * size])))
    bundles.append(
        ("appointments", _bundle([_appointment_resource(a, by_id, past_slot) for a in appointments]))
    )

    return SyntheticClinic(
        today=today,
        timezone=timezone,
        patients=patients,
        schedules=schedules,
        appointments=tuple(appointments),
        bundles=tuple(bundles),
        seed=seed,
        weeks=weeks,
        slot_minutes=slot_minutes,
    )


# --- patients --------------------------------------------------------------------------------------------


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if c.isascii() and c.isalnum()).lower()


def _patients(seed: int) -> tuple[tuple[SyntheticPatient, ...], list[dict[str, Any]]]:
    entries: list[roster.RosterEntry] = list(roster.ROSTER)
    names = {(e.given, e.family) for e in entries}
    rng = random.Random(f"synthetic-clinic:{seed}:patients")
    first, last = date(1940, 1, 1).toordinal(), date(2015, 12, 31).toordinal()
    while len(entries) < len(roster.ROSTER) + POOL_PATIENTS:
        gender = rng.choice(("female", "male"))
        given = (rng.choice(roster.GIVEN_FEMALE if gender == "female" else roster.GIVEN_MALE),)
        family = rng.choice(roster.FAMILY)
        born = date.fromordinal(rng.randint(first, last))
        if (given, family) in names or (born.month, born.day) == (2, 29):
            continue
        names.add((given, family))
        tags = frozenset({roster.POOL, roster.NO_APPOINTMENTS})
        entries.append(roster.RosterEntry(given, family, born, gender, tags, email=rng.random() < 0.5))

    patients: list[SyntheticPatient] = []
    resources: list[dict[str, Any]] = []
    for index, entry in enumerate(entries, start=1):
        if index > 99:
            raise ValueError("the 555-01xx phone range holds at most 99 patients")
        patient_id = f"pat-{index:03d}"
        phone = f"+1-555-01{index:02d}"
        # Roster addresses do not depend on the seed, so the hard cases are identical for every seed.
        seed_part = "roster" if roster.POOL not in entry.tags else str(seed)
        address_rng = random.Random(f"synthetic-clinic:{seed_part}:address:{patient_id}")
        town, state = address_rng.choice(roster.TOWNS)
        telecom: list[dict[str, Any]] = [{"system": "phone", "value": phone, "use": "mobile", "rank": 1}]
        if entry.email:
            local = ".".join(_ascii(part) for part in (*entry.given, entry.family))
            telecom.append({"system": "email", "value": f"{local}.{index:03d}@example.org", "use": "home"})
        resources.append(
            {
                "resourceType": "Patient",
                "id": patient_id,
                "meta": _meta(),
                "active": True,
                "identifier": [
                    {
                        "use": "usual",
                        "type": {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                    "code": "MR",
                                    "display": "Medical record number",
                                }
                            ],
                            "text": "MRN",
                        },
                        "system": MRN_SYSTEM,
                        "value": f"SYN-{100000 + index * 37:06d}",
                    }
                ],
                "name": [{"use": "official", "family": entry.family, "given": list(entry.given)}],
                "telecom": telecom,
                "gender": entry.gender,
                "birthDate": entry.birth_date.isoformat(),
                "address": [
                    {
                        "use": "home",
                        "type": "physical",
                        "line": [f"{address_rng.randint(10, 9899)} {address_rng.choice(roster.STREETS)}"],
                        "city": town,
                        "state": state,
                        "postalCode": f"00{address_rng.randint(100, 499)}",
                        "country": "US",
                    }
                ],
            }
        )
        patients.append(
            SyntheticPatient(
                id=patient_id,
                given=entry.given[0],
                family=entry.family,
                birth_date=entry.birth_date,
                phone=phone,
                tags=entry.tags,
                given_names=entry.given,
            )
        )
    return tuple(patients), resources


# --- schedules, slots, appointments ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slot:
    practitioner: _Practitioner
    start: datetime
    minutes: int

    @property
    def id(self) -> str:
        return f"slot-{self.practitioner.key}-{self.start:%Y%m%d-%H%M}"

    @property
    def end(self) -> datetime:
        return _local(self.start.date(), self.start.time(), self.start.tzinfo, self.minutes)


def _local(day: date, at: time, zone: Any, plus_minutes: int = 0) -> datetime:
    """Wall-clock time ``at`` (+ minutes) on ``day`` in ``zone``, with that date's UTC offset."""
    naive = datetime.combine(day, at) + timedelta(minutes=plus_minutes)
    return naive.replace(tzinfo=zone)


def _slots(first_day: date, end_day: date, zone: ZoneInfo, minutes: int) -> list[_Slot]:
    slots: list[_Slot] = []
    for practitioner in PRACTITIONERS:
        day = first_day
        while day < end_day:
            if day.weekday() < 5:
                for opens, closes in SESSIONS:
                    start = datetime.combine(day, opens)
                    while start + timedelta(minutes=minutes) <= datetime.combine(day, closes):
                        slots.append(_Slot(practitioner, start.replace(tzinfo=zone), minutes))
                        start += timedelta(minutes=minutes)
            day += timedelta(days=1)
    return slots


def _meta() -> dict[str, Any]:
    return {"tag": [{"system": SYNTHETIC_TAG_SYSTEM, "code": "synthetic", "display": "Synthetic test data"}]}


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": r, "request": {"method": "PUT", "url": f"{r['resourceType']}/{r['id']}"}}
            for r in resources
        ],
    }


def _practitioner_resource(p: _Practitioner) -> dict[str, Any]:
    return {
        "resourceType": "Practitioner",
        "id": p.id,
        "meta": _meta(),
        "active": True,
        "name": [{"use": "official", "family": p.family, "given": [p.given], "prefix": ["Dr."]}],
        "gender": p.gender,
    }


def _service_types(p: _Practitioner) -> list[dict[str, Any]]:
    return [visit_type_concept(code) for code in p.visit_types]


def _schedule_resource(p: _Practitioner, first_day: date, end_day: date, zone: ZoneInfo) -> dict[str, Any]:
    return {
        "resourceType": "Schedule",
        "id": p.schedule_id,
        "meta": _meta(),
        "active": True,
        "serviceType": _service_types(p),
        "actor": [{"reference": f"Practitioner/{p.id}", "display": p.display}],
        "planningHorizon": {
            "start": _local(first_day, time(0, 0), zone).isoformat(),
            "end": _local(end_day, time(0, 0), zone).isoformat(),
        },
        "comment": f"Clinic hours for {p.display}: weekdays 09:00-12:00 and 13:00-17:00.",
    }


def _slot_resource(slot: _Slot, status: str) -> dict[str, Any]:
    return {
        "resourceType": "Slot",
        "id": slot.id,
        "meta": _meta(),
        "schedule": {"reference": f"Schedule/{slot.practitioner.schedule_id}"},
        "serviceType": _service_types(slot.practitioner),
        "status": status,
        "start": slot.start.isoformat(),
        "end": slot.end.isoformat(),
    }


def _appointment(patient: SyntheticPatient, slot: _Slot, visit_type: str) -> SyntheticAppointment:
    return SyntheticAppointment(
        id="",
        patient_id=patient.id,
        slot_id=slot.id,
        schedule_id=slot.practitioner.schedule_id,
        start=slot.start,
        visit_type=visit_type,
    )


def _appointment_resource(
    a: SyntheticAppointment, slots: dict[str, _Slot], past_slot: _Slot
) -> dict[str, Any]:
    slot = past_slot if a.slot_id == past_slot.id else slots[a.slot_id]
    practitioner = slot.practitioner
    return {
        "resourceType": "Appointment",
        "id": a.id,
        "meta": _meta(),
        "status": "booked",
        "serviceType": [visit_type_concept(a.visit_type)],
        "start": slot.start.isoformat(),
        "end": slot.end.isoformat(),
        "minutesDuration": slot.minutes,
        "slot": [{"reference": f"Slot/{slot.id}"}],
        "participant": [
            {"actor": {"reference": f"Patient/{a.patient_id}"}, "status": "accepted"},
            {
                "actor": {"reference": f"Practitioner/{practitioner.id}", "display": practitioner.display},
                "status": "accepted",
            },
        ],
    }
