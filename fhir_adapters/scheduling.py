"""Scheduling operations: the only API the dialogue uses to reach FHIR.

Every operation that concerns a patient takes the ``PatientRef`` the call verified, and checks that what
it touches belongs to that patient. Writes follow one rule: claim the slot first with ``If-Match`` (the
lock), then write the appointment, and undo the claim if that fails, so a failure leaves the schedule as
it was and two callers can never hold one slot.
"""

from __future__ import annotations

import contextlib
import re
import time
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import jellyfish
from fhirclient.models.appointment import Appointment

from .errors import (
    FhirConflict,
    FhirError,
    FhirInvalidResponse,
    FhirNotAllowed,
    FhirNotFound,
    FhirUnavailable,
)
from .gateway import FhirGateway, Purpose
from .keypad import LETTER_KEYS, keypad_digits, letters_on
from .spelling import first_letters, spelled_alike
from .values import (
    AppointmentInfo,
    ClinicDirectory,
    GivenSpelling,
    PatientIdentity,
    PatientRef,
    PractitionerSchedule,
    SlotOffer,
    TimeOfDay,
    VisitType,
)

BOOKING_IDENTIFIER_SYSTEM = "urn:ietf:rfc:3986"
CANCELLATION_REASON = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/appointment-cancellation-reason",
            "code": "pat",
            "display": "Patient",
        }
    ]
}
_SLOT_ELEMENTS = ("schedule", "status", "start", "end", "serviceType")
_APPOINTMENT_ELEMENTS = ("status", "start", "end", "slot", "participant", "serviceType")
_SLOT_PAGE = 50
_IDENTITY_ELEMENTS = ("name", "birthDate")
#: A keyed or spelled surname's search asks for at most this many records (the gateway's ``max_page``
#: may lower it). It is never paged: a page that may not hold every candidate verifies nobody.
_CANDIDATE_PAGE = 50


class SchedulingError(FhirError):
    """A scheduling rule said no; the message is safe to log and the dialogue maps it to speech."""


class SlotUnavailable(SchedulingError, FhirConflict):
    default_message = "That slot is no longer free."


class NotThisPatientsAppointment(SchedulingError, FhirNotAllowed):
    """Also raised for an appointment id that does not exist: the caller learns nothing either way."""

    default_message = "That appointment is not one of this patient's booked appointments."


class VisitTypeNotOffered(SchedulingError):
    default_message = "That visit type is not offered in that slot."


class RescheduleFailed(SchedulingError):
    default_message = "The appointment could not be moved; the original booking stands."


def normalise_name(text: str) -> str:
    """Case-, accent- and punctuation-blind: "O'Brien", "o brien" and "OBrien" compare equal."""
    stripped = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[^0-9a-z]", "", stripped.casefold())


def _search_prefix(family: str) -> str:
    """The first alphabetic run of the family name: the server matches by prefix, we compare exactly."""
    match = re.match(r"\w+", family.strip(), flags=re.UNICODE)
    return match.group(0) if match else family.strip()


#: How alike a heard given name and the record's must be (Jaro-Winkler, on the letters or on their
#: Metaphone keys): "Shivon" (0.77) and "Shabbanda" (0.87 on the keys) pass for "Siobhan"; "Roberto"
#: (0.52) and "Sam" (0.49) do not. Deliberately lenient: the identity rests on the spelled surname and
#: the birth date, both exact; the given name only has to be plausibly the one heard, and two records
#: it cannot tell apart verify neither.
SOUNDS_LIKE_THRESHOLD = 0.75


def sounds_like(heard: str, recorded: Sequence[str]) -> bool:
    """Whether a given name heard over the phone could be the record's (its first given name, or all
    of them together), blind to word boundaries: "Min An" for "Minh Anh"."""
    said = normalise_name(heard)
    if not said or not recorded:
        return False
    for target in (normalise_name(recorded[0]), normalise_name("".join(recorded))):
        if not target:
            continue
        letters = jellyfish.jaro_winkler_similarity(said, target)
        keys = jellyfish.jaro_winkler_similarity(jellyfish.metaphone(said), jellyfish.metaphone(target))
        if max(letters, keys) >= SOUNDS_LIKE_THRESHOLD:
            return True
    return False


def _given_matches(spoken: str, recorded: Sequence[str]) -> bool:
    said = normalise_name(spoken)
    if not said or not recorded:
        return False
    return said in (normalise_name(recorded[0]), normalise_name("".join(recorded)))


def given_check(heard: str, given: GivenSpelling | None) -> Callable[[Sequence[str]], bool] | None:
    """How a record's given names are compared: with the caller's keys (exactly) or spelling (as a
    surname's spelling is), else with what was heard (by sound); None when there is nothing to compare."""
    if given is not None and given.keys:
        keys = given.keys
        return lambda names: bool(names) and keys in (keypad_digits(names[0]), keypad_digits("".join(names)))
    if given is not None and given.letters:
        letters = given.letters
        return lambda names: (
            bool(names) and any(spelled_alike(letters, n) for n in (names[0], "".join(names)))
        )
    if not normalise_name(heard):
        return None
    return lambda names: sounds_like(heard, names)


def _born_with(
    candidates: Sequence[Any],
    birth_date: date,
    family_ok: Callable[[str], bool],
    given_ok: Callable[[Sequence[str]], bool],
) -> list[PatientRef]:
    """The candidates born on ``birth_date`` with a name (any of theirs) whose family and given names
    pass: the comparison stays here, and only refs leave."""
    matches = []
    for patient in candidates:
        if patient.birthDate is None or patient.birthDate.date != birth_date:
            continue
        if any(family_ok(n.family or "") and given_ok(n.given or []) for n in patient.name or []):
            matches.append(PatientRef(patient.id))
    return matches


def _visit_type(concept: Any) -> VisitType | None:
    for coding in getattr(concept, "coding", None) or []:
        if coding.code:
            return VisitType(coding.system, coding.code, coding.display or concept.text or coding.code)
    return None


def _visit_types(concepts: Sequence[Any] | None) -> tuple[VisitType, ...]:
    return tuple(v for v in (_visit_type(c) for c in concepts or []) if v is not None)


def _period_end(period: Any, zone: ZoneInfo) -> datetime | None:
    """A Period's end; a bare date (no offset) is midnight on the clinic's clock."""
    end = getattr(period, "end", None) if period is not None else None
    moment: datetime | None = end.datetime if end is not None else None
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _ref_id(reference: str | None, resource_type: str) -> str | None:
    if reference and reference.startswith(f"{resource_type}/"):
        return reference.split("/", 1)[1].split("/_history", 1)[0]
    return None


class Scheduling:
    """Operations a verified caller may ask for. One instance per process; stateless between calls
    except for the clinic directory, which is refreshed every ``directory_ttl`` seconds."""

    def __init__(
        self,
        gateway: FhirGateway,
        *,
        zone: ZoneInfo,
        horizon_days: int = 60,
        directory_ttl: float = 300.0,
        schedule_ids: Sequence[str] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self._gateway = gateway
        self._clock = clock or (lambda: datetime.now(zone))
        self._only = tuple(schedule_ids or ())
        self._zone = zone
        self._horizon = timedelta(days=horizon_days)
        self._directory_ttl = directory_ttl
        self._directory: ClinicDirectory | None = None
        self._directory_at = 0.0

    # ------------------------------------------------------------------ the clinic

    async def directory(self, *, refresh: bool = False) -> ClinicDirectory:
        """Practitioners and visit types, learned from active Schedules (never from Practitioner)."""
        stale = time.monotonic() - self._directory_at > self._directory_ttl
        if self._directory is None or refresh or stale:
            criteria = [("active", "true")]
            if self._only:
                criteria.append(("_id", ",".join(self._only)))
            schedules = await self._gateway.search(
                "Schedule",
                criteria,
                elements=("actor", "serviceType", "active", "planningHorizon"),
                count=200,
                purpose=Purpose.LEARN_CLINIC,
            )
            found = []
            for schedule in schedules:
                actor = next((a for a in schedule.actor or [] if a.display), None)
                if actor is None:
                    continue  # a calendar with no spoken name cannot be offered to a caller
                found.append(
                    PractitionerSchedule(
                        schedule_id=schedule.id,
                        practitioner=actor.display,
                        practitioner_reference=actor.reference,
                        visit_types=_visit_types(schedule.serviceType),
                        planned_until=_period_end(schedule.planningHorizon, self._zone),
                    )
                )
            self._directory = ClinicDirectory(tuple(sorted(found, key=lambda s: s.practitioner)))
            self._directory_at = time.monotonic()
        return self._directory

    # ------------------------------------------------------------------ identity

    async def find_patient(self, *, given: str, family: str, birth_date: date) -> list[PatientRef]:
        """Patients whose name and birth date match what the caller said. Names are compared here,
        exactly (but blind to case, accents and punctuation); no other field of the record is loaded."""
        if not normalise_name(given):
            return []
        return await self._born_with_surname(family, birth_date, lambda names: _given_matches(given, names))

    async def find_patient_spelled(
        self, *, heard_given: str, family: str, birth_date: date, given: GivenSpelling | None = None
    ) -> list[PatientRef]:
        """Patients born on that date whose surname is the one the caller spelled aloud, exactly or as a
        phone line mangles letters (``spelling.spelled_alike``: "OKONKNO" for Okonkwo; an exact spelling
        of someone wins over near ones), and whose given name sounds like what was heard, or is what the
        caller spelled or keyed (``given``): the name over a phone line is the fragile signal, the
        spelling and the date the robust ones. Letters heard are not exact, so the search is by birth
        date with the first letter heard and those that sound like it as surname prefixes
        (``family=b,c,d,e,g,p,t,v,z``), name and birthDate only, one page never followed: the same
        narrowing and the same rule as ``find_patient_keyed``. The comparison happens here; only refs
        leave."""
        given_ok = given_check(heard_given, given)
        if given_ok is None or not first_letters(family):
            return []
        page = await self._born_on_starting_with(first_letters(family), birth_date)
        if page is None:
            return []
        said = normalise_name(family)
        exact = _born_with(page, birth_date, lambda recorded: normalise_name(recorded) == said, given_ok)
        if exact:  # a spelling that is exactly someone's is never made ambiguous by a near neighbour
            return exact
        return _born_with(page, birth_date, lambda recorded: spelled_alike(family, recorded), given_ok)

    async def find_patient_keyed(
        self, *, heard_given: str, keys: str, birth_date: date, given: GivenSpelling | None = None
    ) -> list[PatientRef]:
        """Patients born on that date whose surname the caller keyed on the phone keypad, one press per
        letter (``keypad_digits``: 2 = ABC ... 9 = WXYZ; 6566596 for Okonkwo), and whose given name
        sounds like what was heard. The keys are ambiguous (2653 is both Cole and Bold), so the search
        is by birth date with every letter of the first key as a surname prefix (``family=m,n,o``): the
        same narrowing as the other identity searches (a family name with a birth date, never a
        roster), name and birthDate only, purpose verify-identity. The keys are compared here.

        The page is capped, never followed (a ``next`` link would carry the criteria in its URL); if it
        may not hold every candidate, nothing verifies: a match could be among the rest, so a single
        match in the page proves nothing, and the caller gets the usual failure instead of a guess."""
        given_ok = given_check(heard_given, given)
        if given_ok is None or not keys or not set(keys) <= LETTER_KEYS:
            return []
        page = await self._born_on_starting_with(letters_on(keys[0]), birth_date)
        if page is None:
            return []
        return _born_with(
            page,
            birth_date,
            lambda family: keypad_digits(family) == keys,
            given_ok,
        )

    async def _born_on_starting_with(self, letters: str, birth_date: date) -> Sequence[Any] | None:
        """The records born that day whose surname starts with one of ``letters`` (name and birthDate
        only, one page never followed); None when that page may not hold every one of them, since a
        single match among part of the candidates proves nothing."""
        page = await self._gateway.search(
            "Patient",
            [("family", ",".join(letters)), ("birthdate", birth_date.isoformat())],
            elements=_IDENTITY_ELEMENTS,
            count=_CANDIDATE_PAGE,
            purpose=Purpose.VERIFY_IDENTITY,
        )
        return page if page.complete else None

    async def _born_with_surname(
        self, family: str, birth_date: date, given_ok: Callable[[Sequence[str]], bool]
    ) -> list[PatientRef]:
        if not normalise_name(family):
            return []
        candidates = await self._gateway.search(
            "Patient",
            [("family", _search_prefix(family)), ("birthdate", birth_date.isoformat())],
            elements=_IDENTITY_ELEMENTS,
            count=20,
            purpose=Purpose.VERIFY_IDENTITY,
        )
        said_family = normalise_name(family)
        return _born_with(
            candidates, birth_date, lambda recorded: normalise_name(recorded) == said_family, given_ok
        )

    async def patient_for_staff(self, patient: PatientRef) -> PatientIdentity:
        """The name and birth date of an escalation's patient, for the front desk that calls them back:
        one read of ``name`` and ``birthDate`` (purpose ``staff-console``), nothing else of the record.
        Raises ``FhirNotFound`` when the record is gone."""
        found = await self._gateway.read(
            "Patient", patient.id, elements=("name", "birthDate"), purpose=Purpose.STAFF_CONSOLE
        )
        record = found.resource
        names = record.name or []
        name = next((n for n in names if n.use == "official"), names[0] if names else None)
        if name is None:
            shown = ""
        elif name.text:
            shown = name.text
        else:
            shown = " ".join([*(name.given or []), name.family or ""]).strip()
        born = record.birthDate.date if record.birthDate is not None else None
        return PatientIdentity(shown, born)

    async def phone_on_record(self, patient: PatientRef, phone: str) -> bool:
        """Whether the calling number is on the patient's record, asked of the server: the number on
        record is never loaded. An extra signal only; never enough to verify alone."""
        digits = re.sub(r"\D", "", phone)
        if len(digits) < 7:
            return False
        found = await self._gateway.search(
            "Patient",
            [("_id", patient.id), ("phone", phone)],
            elements=(),
            count=1,
            purpose=Purpose.VERIFY_IDENTITY,
        )
        return any(p.id == patient.id for p in found)

    # ------------------------------------------------------------------ reading the schedule

    async def upcoming_appointments(
        self, patient: PatientRef, *, now: datetime | None = None
    ) -> list[AppointmentInfo]:
        now = now or self._clock()
        found = await self._gateway.search(
            "Appointment",
            [("patient", patient.reference), ("status", "booked"), ("date", f"ge{now.isoformat()}")],
            elements=_APPOINTMENT_ELEMENTS,
            count=20,
            sort="date",
            purpose=Purpose.LIST_APPOINTMENTS,
        )
        if found.withheld and not found.complete:
            # The server ignored part of the search and filled the page with others' appointments: the
            # caller's own may be beyond it, and "you have none" would be a false answer.
            raise FhirInvalidResponse(
                "The FHIR server ignored part of an appointment search; the listing may be incomplete.",
                resource_type="Appointment",
            )
        mine = [a for a in found if self._belongs_to(a, patient) and a.status == "booked"]
        return sorted(
            (self._appointment_info(a) for a in mine), key=lambda a: (a.start or now, a.appointment_id)
        )

    async def bookable_until(
        self, *, schedule_ids: Sequence[str] | None = None, visit_type: VisitType | None = None
    ) -> datetime:
        """How far ahead a caller can book: the booking horizon, or sooner where every calendar that
        could serve the request publishes its slots only up to an earlier end (``planningHorizon``)."""
        directory = await self.directory()
        limit = self._clock() + self._horizon
        schedules = [s for s in directory.schedules if schedule_ids is None or s.schedule_id in schedule_ids]
        if visit_type is not None:
            schedules = [s for s in schedules if any(v.code == visit_type.code for v in s.visit_types)]
        ends = [s.planned_until for s in schedules]
        if schedules and all(end is not None for end in ends):
            limit = min(limit, max(end for end in ends if end is not None))
        return limit

    async def find_free_slots(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        schedule_ids: Sequence[str] | None = None,
        visit_type: VisitType | None = None,
        time_of_day: TimeOfDay | None = None,
        limit: int = 3,
    ) -> list[SlotOffer]:
        """Free slots, soonest first, at most ``limit``. Only slots of the clinic's active schedules."""
        directory = await self.directory()
        now = self._clock()
        start = max(start or now, now)
        end = min(end or now + self._horizon, now + self._horizon)
        schedules = [s for s in directory.schedules if schedule_ids is None or s.schedule_id in schedule_ids]
        if visit_type is not None:
            schedules = [s for s in schedules if any(v.code == visit_type.code for v in s.visit_types)]
        if not schedules or start >= end or limit < 1:
            return []
        criteria: list[tuple[str, str]] = [
            ("schedule", ",".join(f"Schedule/{s.schedule_id}" for s in schedules)),
            ("status", "free"),
        ]
        if visit_type is not None:
            criteria.append(("service-type", visit_type.token))
        # Walk forward in growing windows (1, 1, 2, 4, 7, 14... days) rather than asking the server to sort
        # the whole horizon: each answer stays small, and servers without an index on Slot.start (the
        # sandbox's sort costs ~0.5 s) or without _sort at all are still fast. A page that may not hold every
        # match (full, or the server says there is more) means the window may be truncated, so only then is
        # that window asked again sorted.
        offers: list[SlotOffer] = []
        window_start, days = start, 1
        while window_start < end and len(offers) < limit:
            window_end = min(end, window_start + timedelta(days=days))
            window = [
                *criteria,
                ("start", f"ge{window_start.isoformat()}"),
                ("start", f"lt{window_end.isoformat()}"),
            ]
            page = await self._gateway.search(
                "Slot", window, elements=_SLOT_ELEMENTS, count=_SLOT_PAGE, purpose=Purpose.FIND_SLOTS
            )
            if not page.complete:  # judged on what the server sent, before any result was dropped
                page = await self._gateway.search(
                    "Slot",
                    window,
                    elements=_SLOT_ELEMENTS,
                    count=_SLOT_PAGE,
                    sort="start",
                    purpose=Purpose.FIND_SLOTS,
                )
                starts = [s.start.datetime for s in page]
                if starts:  # truncated: the next window starts AT the last start this page reached, since
                    last = max(starts)  # the page may hold only some of the slots that begin then
                    window_end = last if min(starts) < last else last + timedelta(seconds=1)
            for slot in page:
                offer = self._offer(slot, directory)
                if offer is None or not window_start <= offer.start < window_end:
                    continue
                if time_of_day is not None and not time_of_day.admits(
                    offer.start.astimezone(self._zone).time()
                ):
                    continue
                offers.append(offer)
            window_start, days = window_end, min(days * 2 if days > 1 else days + 1, 14)
        offers.sort(key=lambda o: (o.start, o.practitioner))
        return offers[:limit]

    # ------------------------------------------------------------------ writes

    async def book(
        self,
        patient: PatientRef,
        slot_id: str,
        *,
        visit_type: VisitType | None = None,
        purpose: Purpose = Purpose.BOOK,
    ) -> AppointmentInfo:
        directory = await self.directory()
        current = await self._gateway.read("Slot", slot_id, elements=_SLOT_ELEMENTS, purpose=purpose)
        slot = current.resource
        schedule_id = _ref_id(slot.schedule.reference, "Schedule")
        schedule = directory.schedule(schedule_id) if schedule_id else None
        if slot.status != "free" or schedule is None or slot.start.datetime <= self._clock():
            raise SlotUnavailable(resource_type="Slot")
        offered = _visit_types(slot.serviceType) or schedule.visit_types
        if visit_type is not None and all(v.code != visit_type.code for v in offered):
            raise VisitTypeNotOffered(resource_type="Slot")
        try:
            claimed_etag = await self._gateway.update(
                "Slot",
                slot_id,
                [{"op": "replace", "path": "/status", "value": "busy"}],
                if_match=current.etag,
                purpose=purpose,
            )
        except FhirConflict:
            raise SlotUnavailable(resource_type="Slot") from None

        token = f"urn:uuid:{uuid.uuid4()}"
        appointment = self._new_appointment(patient, slot, schedule, visit_type, token)
        try:
            created = await self._gateway.create(
                appointment, purpose=purpose, if_none_exist=f"identifier={BOOKING_IDENTIFIER_SYSTEM}|{token}"
            )
        except FhirError as error:
            landed = await self._find_by_token(token, purpose) if isinstance(error, FhirUnavailable) else None
            if landed is None:
                await self._release_slot(slot_id, purpose, expected_etag=claimed_etag)
                raise
            created_id = landed
        else:
            created_id = created.id
        return AppointmentInfo(
            appointment_id=created_id,
            status="booked",
            start=slot.start.datetime,
            end=slot.end.datetime,
            practitioner=schedule.practitioner,
            visit_type=visit_type,
            slot_ids=(slot_id,),
        )

    async def cancel(
        self, patient: PatientRef, appointment_id: str, *, purpose: Purpose = Purpose.CANCEL
    ) -> AppointmentInfo:
        """Cancel first, then free the slot: if freeing fails the slot stays busy (lost capacity, never a
        double booking), and the failure is visible in the access records."""
        current = await self._owned_appointment(patient, appointment_id, purpose)
        await self._gateway.update(
            "Appointment",
            appointment_id,
            [
                {"op": "replace", "path": "/status", "value": "cancelled"},
                {"op": "add", "path": "/cancelationReason", "value": CANCELLATION_REASON},
            ],
            if_match=current.etag,
            purpose=purpose,
        )
        info = self._appointment_info(current.resource)
        for slot_id in info.slot_ids:
            try:
                await self._release_slot(slot_id, purpose)
            except FhirError:
                continue  # recorded by the gateway; the appointment itself is cancelled
        return AppointmentInfo(
            info.appointment_id,
            "cancelled",
            info.start,
            info.end,
            info.practitioner,
            info.visit_type,
            info.slot_ids,
        )

    async def reschedule(
        self,
        patient: PatientRef,
        appointment_id: str,
        new_slot_id: str,
        *,
        visit_type: VisitType | None = None,
    ) -> AppointmentInfo:
        """Book the new slot, then cancel the old appointment; if the cancel fails, undo the new booking,
        so the caller keeps exactly one appointment whatever happens."""
        old = self._appointment_info(
            (await self._owned_appointment(patient, appointment_id, Purpose.RESCHEDULE)).resource
        )
        if new_slot_id in old.slot_ids:
            raise SlotUnavailable(resource_type="Slot")
        booked = await self.book(
            patient, new_slot_id, visit_type=visit_type or old.visit_type, purpose=Purpose.RESCHEDULE
        )
        try:
            await self.cancel(patient, appointment_id, purpose=Purpose.RESCHEDULE)
        except FhirError:
            with contextlib.suppress(FhirError):  # a failure here is in the access records for staff
                await self.cancel(patient, booked.appointment_id, purpose=Purpose.RESCHEDULE)
            raise RescheduleFailed(resource_type="Appointment") from None
        return booked

    # ------------------------------------------------------------------ helpers

    async def _owned_appointment(self, patient: PatientRef, appointment_id: str, purpose: Purpose) -> Any:
        try:
            current = await self._gateway.read(
                "Appointment", appointment_id, elements=_APPOINTMENT_ELEMENTS, purpose=purpose
            )
        except (FhirNotFound, FhirNotAllowed):
            # A malformed or unknown id gets the same answer as someone else's appointment.
            raise NotThisPatientsAppointment(resource_type="Appointment") from None
        if not self._belongs_to(current.resource, patient) or current.resource.status != "booked":
            raise NotThisPatientsAppointment(resource_type="Appointment")
        return current

    @staticmethod
    def _belongs_to(appointment: Any, patient: PatientRef) -> bool:
        return any(
            p.actor is not None and p.actor.reference == patient.reference
            for p in appointment.participant or []
        )

    async def _release_slot(
        self, slot_id: str, purpose: Purpose, *, expected_etag: str | None = None
    ) -> None:
        """Set a slot we hold back to free. Re-read for a fresh ETag unless we know the one we wrote."""
        etag = expected_etag
        if etag is None:
            etag = (await self._gateway.read("Slot", slot_id, elements=("status",), purpose=purpose)).etag
        try:
            await self._gateway.update(
                "Slot",
                slot_id,
                [{"op": "replace", "path": "/status", "value": "free"}],
                if_match=etag,
                purpose=purpose,
            )
        except FhirConflict:
            if expected_etag is None:
                raise
            await self._release_slot(slot_id, purpose)

    async def _find_by_token(self, token: str, purpose: Purpose) -> str | None:
        """After a create whose answer was lost: did it land? (A read, so it may be retried.)"""
        try:
            found = await self._gateway.search(
                "Appointment",
                [("identifier", f"{BOOKING_IDENTIFIER_SYSTEM}|{token}")],
                elements=(),
                count=1,
                purpose=purpose,
            )
        except FhirError:
            return None
        return found[0].id if found else None

    def _new_appointment(
        self,
        patient: PatientRef,
        slot: Any,
        schedule: PractitionerSchedule,
        visit_type: VisitType | None,
        token: str,
    ) -> Any:
        practitioner: dict[str, Any] = {"display": schedule.practitioner}
        if schedule.practitioner_reference:
            practitioner["reference"] = schedule.practitioner_reference
        body: dict[str, Any] = {
            "resourceType": "Appointment",
            "status": "booked",
            "identifier": [{"system": BOOKING_IDENTIFIER_SYSTEM, "value": token}],
            "start": slot.start.as_json(),
            "end": slot.end.as_json(),
            "slot": [{"reference": f"Slot/{slot.id}"}],
            "participant": [
                {"actor": {"reference": patient.reference}, "status": "accepted"},
                {"actor": practitioner, "status": "accepted"},
            ],
        }
        if visit_type is not None:
            body["serviceType"] = [
                {
                    "coding": [
                        {"system": visit_type.system, "code": visit_type.code, "display": visit_type.display}
                    ],
                    "text": visit_type.display,
                }
            ]
        return Appointment(body, strict=True)

    def _offer(self, slot: Any, directory: ClinicDirectory) -> SlotOffer | None:
        schedule_id = _ref_id(slot.schedule.reference, "Schedule")
        schedule = directory.schedule(schedule_id) if schedule_id else None
        if schedule is None or slot.status != "free":
            return None
        return SlotOffer(
            slot_id=slot.id,
            schedule_id=schedule.schedule_id,
            practitioner=schedule.practitioner,
            start=slot.start.datetime,
            end=slot.end.datetime,
            visit_types=_visit_types(slot.serviceType) or schedule.visit_types,
        )

    @staticmethod
    def _appointment_info(appointment: Any) -> AppointmentInfo:
        practitioner = next(
            (
                p.actor.display
                for p in appointment.participant or []
                if p.actor is not None
                and p.actor.display
                and not (p.actor.reference or "").startswith("Patient/")
            ),
            None,
        )
        services = _visit_types(appointment.serviceType)
        return AppointmentInfo(
            appointment_id=appointment.id,
            status=appointment.status,
            start=appointment.start.datetime if appointment.start else None,
            end=appointment.end.datetime if appointment.end else None,
            practitioner=practitioner,
            visit_type=services[0] if services else None,
            slot_ids=tuple(i for i in (_ref_id(s.reference, "Slot") for s in appointment.slot or []) if i),
        )
