"""The dialogue's tasks and conductor against an in-memory clinic: no FHIR sandbox, so each rule of the
policy is tried directly and fast. The conversation suite (tests/conversations) runs the same code on the
real sandbox over mTLS; these tests pin what each task decides on its own.

``FakeScheduling`` meets the ``Scheduling`` Protocol of ``voice_agent.dialogue.ports`` with a few
synthetic patients, three calendars and their free slots; it books by removing a slot, as FHIR would.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from fhir_adapters import (
    AppointmentInfo,
    ClinicDirectory,
    GivenSpelling,
    PatientRef,
    PractitionerSchedule,
    SlotOffer,
    TimeOfDay,
    VisitType,
)
from fhir_adapters.keypad import keypad_digits
from fhir_adapters.scheduling import given_check, normalise_name
from voice_agent.dialogue import speech, templates
from voice_agent.dialogue.conductor import MAX_STALLED_TURNS, Conversation
from voice_agent.dialogue.context import CallContext
from voice_agent.dialogue.ports import Category
from voice_agent.dialogue.reply import State
from voice_agent.dialogue.tasks.base import Ask, Closed, Done
from voice_agent.dialogue.tasks.choose_appointment import ChooseAppointment
from voice_agent.dialogue.tasks.collect_callback import CallbackAnswer, CollectCallback
from voice_agent.dialogue.tasks.confirm import Confirm
from voice_agent.dialogue.tasks.find_slot import FindSlot, Preferences
from voice_agent.dialogue.tasks.verify_identity import (
    MAX_VERIFICATION_ATTEMPTS,
    VerifyIdentity,
    closed,
    verification_spent,
)
from voice_agent.dialogue.understanding import Expectation, Intent, Slots, UnderstandingContext, Understood
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.session import CallSession

ZONE = ZoneInfo("America/Chicago")
NOW = datetime(2027, 3, 3, 9, 0, tzinfo=ZONE)  # a Wednesday morning

GP = VisitType("urn:test", "gp-visit", "General visit")
DERM = VisitType("urn:test", "derm-follow-up", "Dermatology follow-up")
PHYSICAL = VisitType("urn:test", "annual-physical", "Annual physical")

PARK = PractitionerSchedule("sched-park", "Dr. Daniel Park", None, (GP, PHYSICAL))
OKAFOR = PractitionerSchedule("sched-okafor", "Dr. Amara Okafor", None, (DERM,))
LIN = PractitionerSchedule("sched-lin", "Dr. Mei Lin", None, (GP, DERM))


@dataclass(frozen=True)
class Person:
    ref: PatientRef
    given: str
    family: str
    born: date
    phone: str


ANA = Person(PatientRef("pat-ana"), "Ana", "Quispe", date(1980, 5, 17), "5550100001")
# two records with one name and birth date: only the calling number tells them apart
TWIN_A = Person(PatientRef("pat-twin-a"), "Sam", "Rivera", date(1990, 1, 2), "5550100002")
TWIN_B = Person(PatientRef("pat-twin-b"), "Sam", "Rivera", date(1990, 1, 2), "5550100003")


def at(day_offset: int, hour: int, minute: int = 0) -> datetime:
    day = NOW.date() + timedelta(days=day_offset)
    return datetime.combine(day, time(hour, minute), tzinfo=ZONE)


@dataclass
class FakeScheduling:
    """An in-memory clinic: the ``Scheduling`` Protocol, with every call recorded."""

    people: list[Person] = field(default_factory=lambda: [ANA, TWIN_A, TWIN_B])
    schedules: tuple[PractitionerSchedule, ...] = (PARK, OKAFOR, LIN)
    slots: list[SlotOffer] = field(default_factory=list)
    appointments: dict[str, list[AppointmentInfo]] = field(default_factory=dict)
    lookups: int = 0
    booked: list[tuple[PatientRef, str]] = field(default_factory=list)

    def add_slot(self, schedule: PractitionerSchedule, start: datetime) -> SlotOffer:
        offer = SlotOffer(
            f"slot-{schedule.schedule_id}-{start:%m%d%H%M}",
            schedule.schedule_id,
            schedule.practitioner,
            start,
            start + timedelta(minutes=30),
            schedule.visit_types,
        )
        self.slots.append(offer)
        return offer

    async def directory(self, *, refresh: bool = False) -> ClinicDirectory:
        return ClinicDirectory(self.schedules)

    async def find_patient(self, *, given: str, family: str, birth_date: date) -> list[PatientRef]:
        self.lookups += 1
        return [
            p.ref
            for p in self.people
            if p.given.lower() == given.lower()
            and p.family.lower() == family.lower()
            and p.born == birth_date
        ]

    async def find_patient_spelled(
        self, *, heard_given: str, family: str, birth_date: date, given: GivenSpelling | None = None
    ) -> list[PatientRef]:
        said = normalise_name(family)
        return self._born_with(lambda p: normalise_name(p.family) == said, birth_date, heard_given, given)

    async def find_patient_keyed(
        self, *, heard_given: str, keys: str, birth_date: date, given: GivenSpelling | None = None
    ) -> list[PatientRef]:
        return self._born_with(lambda p: keypad_digits(p.family) == keys, birth_date, heard_given, given)

    def _born_with(
        self, family_ok: Callable[[Person], bool], born: date, heard: str, given: GivenSpelling | None
    ) -> list[PatientRef]:
        """The gateway's own comparison of given names (``given_check``), over the fake's people."""
        self.lookups += 1
        given_ok = given_check(heard, given)
        return [
            p.ref
            for p in self.people
            if family_ok(p) and p.born == born and given_ok is not None and given_ok([p.given])
        ]

    async def phone_on_record(self, patient: PatientRef, phone: str) -> bool:
        return any(p.ref == patient and p.phone == phone for p in self.people)

    async def upcoming_appointments(
        self, patient: PatientRef, *, now: datetime | None = None
    ) -> list[AppointmentInfo]:
        return list(self.appointments.get(patient.id, []))

    async def bookable_until(
        self, *, schedule_ids: Sequence[str] | None = None, visit_type: VisitType | None = None
    ) -> datetime:
        return at(28, 0)

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
        found = [
            s
            for s in sorted(self.slots, key=lambda s: s.start)
            if (start is None or s.start >= start)
            and (end is None or s.start < end)
            and (schedule_ids is None or s.schedule_id in schedule_ids)
            and (visit_type is None or any(v.code == visit_type.code for v in s.visit_types))
            and (time_of_day is None or time_of_day.admits(s.start.astimezone(ZONE).time()))
        ]
        return found[:limit]

    async def book(
        self, patient: PatientRef, slot_id: str, *, visit_type: VisitType | None = None
    ) -> AppointmentInfo:
        slot = next(s for s in self.slots if s.slot_id == slot_id)
        self.slots.remove(slot)
        self.booked.append((patient, slot_id))
        info = AppointmentInfo(
            f"appt-{len(self.booked)}",
            "booked",
            slot.start,
            slot.end,
            slot.practitioner,
            visit_type,
            (slot_id,),
        )
        self.appointments.setdefault(patient.id, []).append(info)
        return info

    async def cancel(self, patient: PatientRef, appointment_id: str) -> AppointmentInfo:
        mine = self.appointments[patient.id]
        info = next(a for a in mine if a.appointment_id == appointment_id)
        mine.remove(info)
        return replace(info, status="cancelled")

    async def reschedule(
        self,
        patient: PatientRef,
        appointment_id: str,
        new_slot_id: str,
        *,
        visit_type: VisitType | None = None,
    ) -> AppointmentInfo:
        old = await self.cancel(patient, appointment_id)
        return await self.book(patient, new_slot_id, visit_type=visit_type or old.visit_type)


@dataclass
class FakeGate:
    """The cross-call identity counts, in memory: locked once ``limit`` failures name the same key."""

    limit: int = 5
    failures: dict[str, int] = field(default_factory=dict)

    async def locked(self, *, name: str | None, number: str | None, source: str | None) -> bool:
        return any(self.failures.get(k, 0) >= self.limit for k in (name, number, source) if k)

    async def failed(self, *, name: str | None, number: str | None, source: str | None) -> None:
        for key in (name, number, source):
            if key:
                self.failures[key] = self.failures.get(key, 0) + 1


@dataclass
class FakeEscalations:
    made: list[tuple[Category, bool, PatientRef | None, str | None]] = field(default_factory=list)

    async def escalate(
        self,
        *,
        category: Category,
        urgent: bool,
        patient: PatientRef | None,
        callback_number: str | None,
        session: CallSession,
    ) -> None:
        self.made.append((category, urgent, patient, callback_number))


def session(number: str | None = None) -> CallSession:
    return CallSession(uuid.uuid4(), 0.0, 0.0, caller_number=number)


def context(
    clinic: FakeScheduling, *, number: str | None = None, gate: FakeGate | None = None
) -> CallContext:
    return CallContext(clinic, session(number), ZONE, clock=lambda: NOW, gate=gate)


def spell_after(born: date) -> Ask:
    """The surname question after a spoken date of birth: it reads that date back."""
    return Ask(templates.ASK_SPELL_SURNAME_HEARD_DATE.format(born=speech.birth_date(born)))


def said(**slots: object) -> Understood:
    return Understood(intent=Intent.PROVIDE_INFO, slots=Slots.model_validate(slots), confidence=1.0)


def intent(kind: Intent, **slots: object) -> Understood:
    return Understood(intent=kind, slots=Slots.model_validate(slots), confidence=1.0)


# ---------------------------------------------------------------------------------------- VerifyIdentity


async def test_the_right_name_and_birth_date_verify_exactly_one_record() -> None:
    call = context(FakeScheduling())
    task = VerifyIdentity()
    assert (await task.start(call)) == Ask(templates.VERIFY_INTRO)
    step = await task.handle(said(given_name="Ana", family_name="Quispe"), call)
    assert step == Ask(templates.ASK_BIRTH_DATE) and task.state is State.BIRTH_DATE
    assert await task.handle(said(birth_date=ANA.born), call) == Done(ANA.ref, said=templates.VERIFIED)


async def test_a_wrong_birth_date_never_verifies_and_the_third_failure_closes_verification() -> None:
    clinic = FakeScheduling()
    call = context(clinic)
    task = VerifyIdentity()
    steps = []
    for wrong in range(MAX_VERIFICATION_ATTEMPTS):
        await task.handle(said(given_name="Ana", family_name="Quispe"), call)
        wrong_date = ANA.born + timedelta(days=wrong + 1)
        spell = await task.handle(said(birth_date=wrong_date), call)
        assert spell == spell_after(wrong_date)
        steps.append(await task.handle(said(given_name="Quispe"), call))  # spelled right, still refused
    assert steps[:-1] == [Ask(templates.VERIFY_FAILED_RETRY)] * (MAX_VERIFICATION_ATTEMPTS - 1)
    assert isinstance(steps[-1], Closed) and steps[-1].category == "verification_failed"
    # the right date afterwards, in a fresh task of the same call: no lookup, still closed
    lookups = clinic.lookups
    again = VerifyIdentity()
    assert isinstance(await again.start(call), Closed)
    assert isinstance(
        await again.handle(said(given_name="Ana", family_name="Quispe", birth_date=ANA.born), call), Closed
    )
    assert clinic.lookups == lookups and call.session.patient is None


async def test_no_record_another_birth_date_and_two_records_get_the_same_words() -> None:
    """No existence oracle: the caller cannot tell which of the three it was."""
    replies = []
    for given, family, born in (
        ("Nobody", "Atall", date(1970, 1, 1)),  # no record
        ("Ana", "Quispe", date(1970, 1, 1)),  # a record, another birth date
        ("Sam", "Rivera", TWIN_A.born),  # two records, no calling number to tell them apart
    ):
        call = context(FakeScheduling())
        task = VerifyIdentity()
        first = await task.handle(said(given_name=given, family_name=family, birth_date=born), call)
        replies.append((first, await task.handle(said(given_name=family), call)))
        # the same words whatever was found: only the caller's own date is read back
        assert replies[-1] == (spell_after(born), Ask(templates.VERIFY_FAILED_RETRY))


async def test_the_calling_number_tells_two_records_apart_but_never_verifies_alone() -> None:
    call = context(FakeScheduling(), number=TWIN_B.phone)
    task = VerifyIdentity()
    step = await task.handle(said(given_name="Sam", family_name="Rivera", birth_date=TWIN_B.born), call)
    assert step == Done(TWIN_B.ref, said=templates.VERIFIED)
    task = VerifyIdentity()
    await task.handle(said(given_name="Sam", family_name="Rivera", birth_date=date(1991, 1, 2)), call)
    assert await task.handle(said(given_name="Rivera"), call) == Ask(templates.VERIFY_FAILED_RETRY)


async def test_a_locked_name_is_refused_without_a_lookup_in_the_usual_words() -> None:
    clinic, gate = FakeScheduling(), FakeGate(limit=1)
    gate.failures["Ana Quispe"] = 1
    call = context(clinic, gate=gate)
    task = VerifyIdentity()
    step = await task.handle(said(given_name="Ana", family_name="Quispe", birth_date=ANA.born), call)
    assert step == spell_after(ANA.born)  # as after any inexact match
    assert await task.handle(said(given_name="Quispe"), call) == Ask(templates.VERIFY_FAILED_RETRY)
    assert clinic.lookups == 0 and call.failed_attempts == 1


async def test_a_name_corrected_at_the_birth_date_question_is_the_one_checked() -> None:
    call = context(FakeScheduling())
    task = VerifyIdentity()
    await task.handle(said(given_name="Anna", family_name="Quispe"), call)
    step = await task.handle(said(given_name="Ana", family_name="Quispe", birth_date=ANA.born), call)
    assert step == Done(ANA.ref, said=templates.VERIFIED)


def test_a_whole_birth_date_is_a_complete_answer_and_half_of_one_waits() -> None:
    call = context(FakeScheduling())
    task = VerifyIdentity()
    task.state = State.BIRTH_DATE
    assert task.complete("May seventeenth nineteen eighty", call)
    assert not task.complete("May seventeenth", call)
    assert task.awaits_more("May seventeenth", call)
    assert not task.awaits_more("I'd rather not say", call)


# -------------------------------------------------------------------------------------- FindSlot


async def test_slots_are_offered_and_picked_only_among_those_read_out() -> None:
    clinic = FakeScheduling()
    first = [clinic.add_slot(PARK, at(1, h)) for h in (9, 10, 11)]
    clinic.add_slot(PARK, at(1, 14))
    call = context(clinic)
    task = FindSlot(Preferences())
    assert await task.start(call) == Ask(templates.ASK_PREFERENCE)
    step = await task.handle(said(date_from=at(1, 0).date(), date_to=at(1, 0).date()), call)
    assert isinstance(step, Ask) and step.text.startswith("I have openings") and task.offers == first
    assert await task.handle(intent(Intent.CHOOSE_OPTION, option=2), call) == Done(first[1])


async def test_no_morning_offers_the_nearest_time_instead_of_a_dead_end() -> None:
    clinic = FakeScheduling()
    afternoon = clinic.add_slot(PARK, at(1, 14))
    call = context(clinic)
    task = FindSlot(Preferences())
    day = at(1, 0).date()
    step = await task.handle(said(date_from=day, date_to=day, time_not_after=time(12, 0)), call)
    assert isinstance(step, Ask)
    assert "tomorrow before noon" in step.text and "The nearest I have is" in step.text, step.text
    assert "on tomorrow" not in step.text
    assert await task.handle(intent(Intent.AFFIRM), call) == Done(afternoon)


async def test_a_doctor_who_does_not_offer_the_visit_is_said_so_with_who_does() -> None:
    clinic = FakeScheduling()
    derm = clinic.add_slot(OKAFOR, at(2, 10))
    call = context(clinic)
    task = FindSlot(Preferences())
    step = await task.handle(said(practitioner=PARK.schedule_id, visit_type=DERM.code), call)
    assert isinstance(step, Ask) and task.state is State.RELAX
    assert step.text.startswith("Dr. Daniel Park doesn't see patients for a dermatology follow-up")
    assert "Dr. Amara Okafor" in step.text and "Dr. Mei Lin" in step.text
    assert "derm-follow-up" not in step.text  # the display, never the code
    # yes: the first available time for that visit, with whoever offers it
    offered = await task.handle(intent(Intent.AFFIRM), call)
    assert isinstance(offered, Ask) and task.offers == [derm]


async def test_a_reschedule_keeps_the_practitioner_and_visit_type_unless_asked_otherwise() -> None:
    clinic = FakeScheduling()
    clinic.add_slot(PARK, at(1, 9))  # a GP's time comes first...
    okafor = clinic.add_slot(OKAFOR, at(3, 10))  # ...but the appointment is a dermatology follow-up
    moving = AppointmentInfo(
        "appt-9", "booked", at(5, 11), at(5, 11, 30), OKAFOR.practitioner, DERM, ("old",)
    )
    call = context(clinic)
    task = FindSlot(Preferences(), target=moving)
    await task.start(call)
    step = await task.handle(intent(Intent.PROVIDE_INFO, soonest=True), call)
    assert isinstance(step, Ask) and task.offers == [okafor], step.text
    assert task.visit(call) == DERM


async def test_the_appointment_being_moved_is_never_offered_as_its_new_time() -> None:
    clinic = FakeScheduling()
    own = clinic.add_slot(OKAFOR, at(3, 10))
    later = clinic.add_slot(OKAFOR, at(4, 10))
    moving = AppointmentInfo(
        "appt-9", "booked", own.start, own.end, OKAFOR.practitioner, DERM, (own.slot_id,)
    )
    task = FindSlot(Preferences(), target=moving)
    call = context(clinic)
    await task.start(call)
    await task.handle(intent(Intent.PROVIDE_INFO, soonest=True), call)
    assert task.offers == [later]


async def test_no_to_every_time_offered_moves_on_to_later_times() -> None:
    clinic = FakeScheduling()
    early = [clinic.add_slot(LIN, at(1, h)) for h in (9, 10, 11)]
    late = clinic.add_slot(LIN, at(2, 9))
    call = context(clinic)
    task = FindSlot(Preferences())
    await task.handle(intent(Intent.PROVIDE_INFO, soonest=True), call)
    assert task.offers == early
    await task.handle(intent(Intent.DENY), call)
    assert task.offers == [late]


# ----------------------------------------------------------------------- Confirm, callback, choose


async def test_confirm_is_yes_or_no_and_asks_again_otherwise() -> None:
    call = context(FakeScheduling())
    task = Confirm("Dr. Daniel Park, tomorrow at 9 AM. Shall I book it?")
    assert await task.handle(intent(Intent.AFFIRM), call) == Done(True)
    assert await task.handle(intent(Intent.DENY), call) == Done(False)
    again = await task.handle(intent(Intent.UNKNOWN), call)
    assert isinstance(again, Ask) and again.stalled
    assert task.complete("yes please", call) and not task.complete("yes but first tell me", call)


async def test_a_callback_number_is_gathered_from_speech_or_keypad() -> None:
    call = context(FakeScheduling())
    task = CollectCallback(templates.ASK_CALLBACK_NUMBER, asking_number=True)
    half = await task.handle(said(phone="55501"), call)
    assert isinstance(half, Ask) and half.stalled
    assert await task.handle(said(phone="5550107788"), call) == Done(CallbackAnswer(True, "5550107788"))
    assert await task.keyed("5550107788", call) == Done(CallbackAnswer(True, "5550107788"))
    assert task.awaits_more("five five five oh one", call)


async def test_an_appointment_is_chosen_only_among_those_read_out() -> None:
    call = context(FakeScheduling())
    mine = [
        AppointmentInfo(f"appt-{n}", "booked", at(n, 9), at(n, 9, 30), PARK.practitioner, GP, ())
        for n in range(1, 6)
    ]
    task = ChooseAppointment(mine)
    asked = await task.start(call)
    assert isinstance(asked, Ask) and asked.text.count("your general visit") == 3
    assert await task.handle(intent(Intent.CHOOSE_OPTION, option=3), call) == Done(mine[2])
    # the fifth exists but was not read out: a day naming it picks nothing
    fifth_day = mine[4].start.date() if mine[4].start else None
    assert isinstance(await task.handle(said(date_from=fifth_day, date_to=fifth_day), call), Ask)


# --------------------------------------------------------------------------------------- conductor


def conversation(
    clinic: FakeScheduling, *, number: str | None = None, gate: FakeGate | None = None
) -> tuple[Conversation, FakeEscalations]:
    escalations = FakeEscalations()
    talk = Conversation(
        scheduling=clinic,
        session=session(number),
        understanding=RulesUnderstanding(),
        escalations=escalations,
        zone=ZONE,
        clock=lambda: NOW,
        gate=gate,
    )
    return talk, escalations


async def test_a_whole_booking_books_the_slot_read_back_for_the_verified_caller() -> None:
    clinic = FakeScheduling()
    slots = [clinic.add_slot(LIN, at(1, h)) for h in (9, 10, 11)]
    talk, _ = conversation(clinic)
    await talk.greet()
    for line in (
        "I'd like to book an appointment",
        "Ana Quispe",
        "May 17th 1980",
        "tomorrow",
        "the second one",
    ):
        reply = await talk.respond(line)
    assert reply.text.endswith("Shall I book it?") and "tomorrow at 10 AM" in reply.text
    assert "on tomorrow" not in reply.text
    reply = await talk.respond("yes please")
    assert reply.text.startswith("You're booked")
    assert clinic.booked == [(ANA.ref, slots[1].slot_id)]


async def test_a_new_day_at_the_read_back_goes_back_to_the_times() -> None:
    clinic = FakeScheduling()
    clinic.add_slot(LIN, at(1, 9))
    friday = clinic.add_slot(LIN, at(2, 15))
    talk, _ = conversation(clinic)
    await talk.greet()
    for line in ("book an appointment please", "Ana Quispe", "May 17th 1980", "tomorrow"):
        reply = await talk.respond(line)
    assert reply.text.endswith("Would you like that?")
    reply = await talk.respond("yes")
    assert reply.text.endswith("Shall I book it?")
    reply = await talk.respond("no wait, Friday")
    assert "Friday" in reply.text and talk.state is not State.CONFIRM, reply.text
    reply = await talk.respond("yes")
    await talk.respond("yes please")
    assert clinic.booked == [(ANA.ref, friday.slot_id)]


async def test_two_tasks_in_one_call_need_one_verification() -> None:
    clinic = FakeScheduling()
    slot = clinic.add_slot(PARK, at(1, 9))
    clinic.appointments[ANA.ref.id] = [
        AppointmentInfo("appt-old", "booked", at(6, 9), at(6, 9, 30), PARK.practitioner, GP, ("old",))
    ]
    talk, _ = conversation(clinic)
    await talk.greet()
    for line in ("I need to cancel my appointment", "Ana Quispe", "May 17th 1980", "yes please"):
        reply = await talk.respond(line)
    assert reply.text.startswith("It's cancelled")
    for line in ("I'd also like to book a new one", "the first available", "yes", "yes please"):
        reply = await talk.respond(line)
    assert reply.text.startswith("You're booked"), reply.text
    assert clinic.booked == [(ANA.ref, slot.slot_id)] and clinic.lookups == 1


async def test_no_progress_ends_the_call_and_no_prompt_is_said_three_times() -> None:
    talk, escalations = conversation(FakeScheduling())
    await talk.greet()
    await talk.respond("I want to book")
    await talk.respond("Ana Quispe")
    replies = []
    for _ in range(MAX_STALLED_TURNS + 2):
        reply = await talk.respond("um the thing with the stuff")
        replies.append(reply)
        if reply.end is not None:
            break
    assert replies[-1].end == "goodbye" and len(replies) <= MAX_STALLED_TURNS + 1
    texts = [r.text for r in replies]
    assert all(texts.count(t) <= 2 for t in texts), texts
    assert escalations.made == []


async def test_a_fhir_failure_mid_call_is_a_spoken_fallback_and_nothing_half_done() -> None:
    from fhir_adapters import FhirUnavailable

    class Down(FakeScheduling):
        async def find_free_slots(self, **_: object) -> list[SlotOffer]:  # type: ignore[override]
            raise FhirUnavailable("down")

    clinic = Down()
    talk, _ = conversation(clinic)
    await talk.greet()
    for line in ("book please", "Ana Quispe", "May 17th 1980"):
        reply = await talk.respond(line)
    reply = await talk.respond("tomorrow")
    assert reply.text == templates.SYSTEM_TROUBLE and reply.end is None
    assert clinic.booked == []


@pytest.mark.parametrize("guess", range(3))
async def test_an_emergency_is_answered_at_any_step(guess: int) -> None:
    talk, escalations = conversation(FakeScheduling(), number="5550109999")
    await talk.greet()
    for line in ("book please", "Ana Quispe")[:guess]:
        await talk.respond(line)
    reply = await talk.respond("I have crushing chest pain and can't breathe")
    assert reply.end == "escalated" and "dial 9 1 1" in reply.text
    assert escalations.made == [("emergency", True, None, "5550109999")]


async def test_a_visit_type_sent_as_a_bare_code_is_spoken_by_its_directory_display() -> None:
    clinic = FakeScheduling()
    coded = VisitType(PHYSICAL.system, PHYSICAL.code, PHYSICAL.code)  # the server sent no display
    clinic.appointments[ANA.ref.id] = [
        AppointmentInfo("appt-1", "booked", at(6, 9), at(6, 9, 30), PARK.practitioner, coded, ("s",))
    ]
    talk, _ = conversation(clinic)
    await talk.greet()
    for line in ("what appointments do I have", "Ana Quispe"):
        await talk.respond(line)
    reply = await talk.respond("May 17th 1980")
    assert "your annual physical with Dr. Daniel Park" in reply.text, reply.text
    assert "annual-physical" not in reply.text


def test_a_code_no_directory_knows_is_still_said_as_words() -> None:
    from voice_agent.dialogue import speech

    assert speech.visit(VisitType(None, "derm_follow-up", "derm_follow-up")) == "derm follow up"
    assert speech.visit(DERM) == "dermatology follow-up"


async def test_a_misheard_name_is_recovered_by_its_spelling_and_the_birth_date() -> None:
    """Whisper heard "Shabbanda Conquo" for Siobhan Okonkwo: the spelling and the date find her."""
    siobhan = Person(PatientRef("pat-siobhan"), "Siobhan", "Okonkwo", date(1987, 11, 3), "5550100009")
    call = context(FakeScheduling(people=[ANA, siobhan]))
    task = VerifyIdentity()
    await task.handle(said(given_name="Shabbanda", family_name="Conquo"), call)
    assert await task.handle(said(birth_date=siobhan.born), call) == spell_after(siobhan.born)
    spelled = RulesUnderstanding().parse("O K O N K W O", _context(Expectation.FULL_NAME))
    step = await task.handle(spelled, call)
    assert await first_name(task, call, step, "Siobhan") == Done(siobhan.ref, said=templates.VERIFIED)


async def test_the_right_spelling_and_date_with_another_persons_given_name_is_refused() -> None:
    call = context(FakeScheduling())
    task = VerifyIdentity()
    await task.handle(said(given_name="Roberto", family_name="Quispe", birth_date=ANA.born), call)
    assert await task.handle(said(given_name="Quispe"), call) == Ask(templates.VERIFY_FAILED_RETRY)
    assert call.session.patient is None and call.failed_attempts == 1


def _context(expecting: Expectation) -> UnderstandingContext:
    return UnderstandingContext(now=NOW, expecting=expecting)


def test_a_spelling_said_with_pauses_is_gathered_before_it_is_checked() -> None:
    task, call = VerifyIdentity(), context(FakeScheduling())
    task.state = State.SPELL_SURNAME
    assert task.awaits_more("O, K, O", call) and task.awaits_more("P as in Peter, A", call)
    assert task.awaits_more("o apostrophe b", call) and task.awaits_more("N for Nancy, G", call)
    assert task.awaits_more("O-K-O", call) and task.awaits_more("O. K.", call)
    assert not task.awaits_more("Okonkwo", call) and not task.awaits_more("I don't know", call)
    assert not task.awaits_more("O K 0", call) and not task.awaits_more("", call)


@pytest.mark.parametrize(
    "spelling",
    [
        "O K O N K W O",
        "O-K-O-N-K-W-O.",
        "O. K. O. N. K. W. O.",
        "N G",
        "O apostrophe B R I E N",
        "H E R N A N D E Z hyphen R U I Z",
        "P as in Peter, A R K",
        "N for Nancy, G",
    ],
)
def test_a_spelling_the_name_reader_takes_is_letters_so_far_at_every_pause(spelling: str) -> None:
    """One grammar of spelled letters: what the name reader takes as a spelled word, the task waits for
    while it is being said, at every word so far."""
    task, call = VerifyIdentity(), context(FakeScheduling())
    task.state = State.SPELL_SURNAME
    read = RulesUnderstanding().parse(spelling, _context(Expectation.FULL_NAME)).slots
    assert read.given_name is not None and read.family_name is None, spelling
    words = spelling.split()
    for cut in range(1, len(words) + 1):
        so_far = " ".join(words[:cut])
        if words[cut - 1].casefold() in ("as", "in", "for"):
            continue  # "P as in" is half of "P as in Peter": not a letter yet
        assert task.awaits_more(so_far, call), so_far


# ------------------------------------------------------------------- a surname keyed on the keypad

SIOBHAN = Person(PatientRef("pat-siobhan"), "Siobhan", "Okonkwo", date(1987, 11, 3), "5550100009")
OKONKWO_KEYS = "6566596"


async def _at_spelling(
    clinic: FakeScheduling,
    heard: tuple[str, str],
    born: date,
    *,
    number: str | None = None,
    gate: FakeGate | None = None,
) -> tuple[VerifyIdentity, CallContext]:
    """A task at the spelling question: the heard name and a birth date matched no record exactly."""
    call = context(clinic, number=number, gate=gate)
    task = VerifyIdentity()
    await task.handle(said(given_name=heard[0], family_name=heard[1]), call)
    assert await task.handle(said(birth_date=born), call) == spell_after(born)
    return task, call


async def first_name(task: VerifyIdentity, call: CallContext, step: object, given: str) -> object:
    """A misheard surname's spelling is followed by the first name's: spell ``given`` when asked."""
    assert step == Ask(templates.ASK_SPELL_GIVEN), step
    return await task.handle(said(given_name=given), call)


def test_a_surname_is_keyed_one_press_per_letter_letters_only() -> None:
    assert keypad_digits("Okonkwo") == OKONKWO_KEYS
    assert keypad_digits("O'Brien") == "627436" and keypad_digits("Muñoz") == "68669"
    assert keypad_digits("Smith-Jones") == "7648456637" and keypad_digits("van der Linde") == "82633754633"
    assert keypad_digits("Cole") == keypad_digits("Bold") == "2653"  # one key, several letters


async def test_a_keyed_surname_verifies_the_misheard_caller() -> None:
    """Heard "Shivon Okonquo"; the date is right and OKONKWO is keyed as 6566596#."""
    clinic = FakeScheduling(people=[ANA, SIOBHAN])
    task, call = await _at_spelling(clinic, ("Shivon", "Okonquo"), SIOBHAN.born)
    step = await task.keyed(OKONKWO_KEYS, call)  # the surname heard wrong: the first name is spelled too
    assert await first_name(task, call, step, "Siobhan") == Done(SIOBHAN.ref, said=templates.VERIFIED)
    assert call.failed_attempts == 0


async def test_keyed_surname_and_date_with_a_given_name_not_alike_are_refused() -> None:
    task, call = await _at_spelling(
        FakeScheduling(people=[ANA, SIOBHAN]), ("Roberto", "Okonquo"), SIOBHAN.born
    )
    step = await task.keyed(OKONKWO_KEYS, call)
    assert await first_name(task, call, step, "Roberto") == Ask(templates.VERIFY_FAILED_RETRY)
    assert call.session.patient is None and call.failed_attempts == 1 and task.state is State.NAME


async def test_the_right_keys_with_a_wrong_birth_date_are_refused() -> None:
    wrong = SIOBHAN.born + timedelta(days=1)
    task, call = await _at_spelling(FakeScheduling(people=[ANA, SIOBHAN]), ("Shivon", "Okonquo"), wrong)
    step = await task.keyed(OKONKWO_KEYS, call)
    assert await first_name(task, call, step, "Siobhan") == Ask(templates.VERIFY_FAILED_RETRY)
    assert call.failed_attempts == 1


async def test_two_surnames_on_the_same_keys_and_date_verify_neither_in_the_usual_words() -> None:
    """Cole and Bold are both 2653: the keys cannot tell them apart, so neither verifies, in the words
    of every other failure (a wrong spoken spelling, or keys that match nobody); the attested calling
    number can tell them apart, as it does two records of one name."""
    born = date(1990, 6, 1)
    cole = Person(PatientRef("pat-cole"), "Sam", "Cole", born, "5550100011")
    bold = Person(PatientRef("pat-bold"), "Sam", "Bold", born, "5550100012")
    clinic = FakeScheduling(people=[cole, bold])
    replies = []
    for answer in ("2653", "2654", "spoken"):
        task, call = await _at_spelling(clinic, ("Sam", "Coal"), born)
        if answer == "spoken":
            step = await task.handle(said(given_name="Kohl"), call)
        else:
            step = await task.keyed(answer, call)
        replies.append(await first_name(task, call, step, "Sam"))
        assert call.failed_attempts == 1
    assert replies == [Ask(templates.VERIFY_FAILED_RETRY)] * 3
    task, call = await _at_spelling(clinic, ("Sam", "Coal"), born, number=bold.phone)
    step = await task.keyed("2653", call)
    assert await first_name(task, call, step, "Sam") == Done(bold.ref, said=templates.VERIFIED)


@pytest.mark.parametrize("keys", ["6566590", "1656659", "65*6659", "6", ""])
async def test_keys_that_spell_nothing_are_asked_for_again_without_a_lookup(keys: str) -> None:
    clinic = FakeScheduling(people=[ANA, SIOBHAN])
    task, call = await _at_spelling(clinic, ("Shivon", "Okonquo"), SIOBHAN.born)
    lookups = clinic.lookups
    again = await task.keyed(keys, call)
    assert again == Ask(templates.ASK_SPELL_SURNAME_KEYED_AGAIN, stalled=True)
    assert clinic.lookups == lookups and call.failed_attempts == 0 and task.state is State.SPELL_SURNAME
    step = await task.keyed(OKONKWO_KEYS, call)
    assert await first_name(task, call, step, "Siobhan") == Done(SIOBHAN.ref, said=templates.VERIFIED)


async def test_a_locked_name_keyed_is_refused_without_a_lookup_in_the_usual_words() -> None:
    clinic, gate = FakeScheduling(people=[ANA, SIOBHAN]), FakeGate(limit=1)
    gate.failures["Shivon Okonquo"] = 1
    task, call = await _at_spelling(clinic, ("Shivon", "Okonquo"), SIOBHAN.born, gate=gate)
    lookups = clinic.lookups
    step = await task.keyed(OKONKWO_KEYS, call)
    assert await first_name(task, call, step, "Siobhan") == Ask(templates.VERIFY_FAILED_RETRY)
    assert clinic.lookups == lookups and call.failed_attempts == 1


class ModelSaysReschedule:
    """The rules, except that one phrase comes back as a model once heard it: a reschedule with a day."""

    def __init__(self, phrase: str, day: date) -> None:
        self.phrase, self.day, self.rules = phrase, day, RulesUnderstanding()

    async def understand(self, utterance: str, context: UnderstandingContext) -> Understood:
        if utterance == self.phrase:
            return intent(Intent.RESCHEDULE, date_from=self.day, date_to=self.day)
        return await self.rules.understand(utterance, context)


async def test_another_day_at_a_bookings_read_back_never_moves_an_existing_appointment() -> None:
    clinic = FakeScheduling()
    clinic.add_slot(LIN, at(1, 9))
    friday = clinic.add_slot(LIN, at(2, 15))
    existing = AppointmentInfo("appt-old", "booked", at(6, 9), at(6, 9, 30), PARK.practitioner, GP, ("o",))
    clinic.appointments[ANA.ref.id] = [existing]
    phrase = "actually, can we do Friday instead"
    talk = Conversation(
        scheduling=clinic,
        session=session(),
        understanding=ModelSaysReschedule(phrase, friday.start.date()),
        escalations=FakeEscalations(),
        zone=ZONE,
        clock=lambda: NOW,
    )
    await talk.greet()
    for line in ("book an appointment please", "Ana Quispe", "May 17th 1980", "tomorrow", "yes"):
        await talk.respond(line)
    reply = await talk.respond(phrase)
    assert "move" not in reply.text and "Which appointment" not in reply.text, reply.text
    for line in ("yes", "yes please"):
        reply = await talk.respond(line)
    assert reply.text.startswith("You're booked"), reply.text
    assert clinic.booked == [(ANA.ref, friday.slot_id)]
    assert existing in clinic.appointments[ANA.ref.id]  # the existing appointment was not touched


# ------------------------------------------------------------------ a name heard only as ordinary words


def heard_unsure(given: str, family: str) -> Understood:
    """A name the reader took from ordinary words ("your honor, Conquale"): below its sure confidence."""
    return Understood(
        intent=Intent.PROVIDE_INFO,
        slots=Slots.model_validate({"given_name": given, "family_name": family}),
        confidence=0.75,
    )


async def _unsure_at_spelling(clinic: FakeScheduling, born: date) -> tuple[VerifyIdentity, CallContext]:
    call = context(clinic)
    task = VerifyIdentity()
    await task.handle(heard_unsure("Your Honor", "Conquale"), call)
    assert await task.handle(said(birth_date=born), call) == spell_after(born)
    return task, call


async def test_a_name_heard_only_as_words_is_verified_by_both_spellings() -> None:
    """Siobhan Okonkwo heard as "your honor, Conquale": the surname keyed, then the first name keyed."""
    task, call = await _unsure_at_spelling(FakeScheduling(people=[ANA, SIOBHAN]), SIOBHAN.born)
    assert await task.keyed(OKONKWO_KEYS, call) == Ask(templates.ASK_SPELL_GIVEN)
    assert task.state is State.SPELL_GIVEN and task.awaits_more("S I O", call)
    assert await task.keyed(keypad_digits("Siobhan"), call) == Done(SIOBHAN.ref, said=templates.VERIFIED)
    assert call.failed_attempts == 0


async def test_a_first_name_spelled_aloud_after_keyed_surname_verifies() -> None:
    task, call = await _unsure_at_spelling(FakeScheduling(people=[ANA, SIOBHAN]), SIOBHAN.born)
    await task.keyed(OKONKWO_KEYS, call)
    assert await task.handle(said(given_name="Siobhan"), call) == Done(SIOBHAN.ref, said=templates.VERIFIED)


async def test_a_mumbled_name_cannot_skip_the_first_name() -> None:
    """Saying the given name unclearly on purpose and keying a known surname with a known birth date is
    not enough: the first name must be spelled, and a wrong one is refused in the usual words."""
    task, call = await _unsure_at_spelling(FakeScheduling(people=[ANA, SIOBHAN]), SIOBHAN.born)
    await task.keyed(OKONKWO_KEYS, call)
    assert await task.keyed(keypad_digits("Margaret"), call) == Ask(templates.VERIFY_FAILED_RETRY)
    assert call.session.patient is None and call.failed_attempts == 1


async def test_whether_the_first_name_is_asked_depends_on_the_hearing_not_the_records() -> None:
    """The same unsure name with a birth date nobody has, and a surname nobody has: the same question,
    so the question tells the caller nothing about the records."""
    task, call = await _unsure_at_spelling(FakeScheduling(people=[ANA, SIOBHAN]), date(1955, 1, 1))
    assert await task.keyed("99999", call) == Ask(templates.ASK_SPELL_GIVEN)
    assert await task.keyed("7777", call) == Ask(templates.VERIFY_FAILED_RETRY)


async def test_a_name_heard_clearly_with_its_surname_right_is_not_asked_for_its_first_name() -> None:
    """One extra turn only: "Shivon Okonkwo" heard, OKONKWO keyed; "Shivon" is compared by sound."""
    clinic = FakeScheduling(people=[ANA, SIOBHAN])
    task, call = await _at_spelling(clinic, ("Shivon", "Okonkwo"), SIOBHAN.born)
    assert await task.keyed(OKONKWO_KEYS, call) == Done(SIOBHAN.ref, said=templates.VERIFIED)


async def test_a_surname_heard_wrong_brings_the_first_name_spelling_whatever_the_records() -> None:
    """The surname heard ("Okonquo") is not the one keyed: the given name heard with it is no better, so
    it is spelled too; the same question whether or not any record has that surname."""
    for keys in (OKONKWO_KEYS, "99999"):
        clinic = FakeScheduling(people=[ANA, SIOBHAN])
        task, call = await _at_spelling(clinic, ("Shivon", "Okonquo"), SIOBHAN.born)
        assert await task.keyed(keys, call) == Ask(templates.ASK_SPELL_GIVEN)


async def test_a_name_heard_as_one_word_twice_goes_on_to_the_spellings() -> None:
    """ "Xiaobanakanko" (Siobhan Okonkwo run together): asked again once, then taken as heard; the birth
    date and both spellings find her, instead of the same question until the call gives up."""
    clinic = FakeScheduling(people=[ANA, SIOBHAN])
    call, task = context(clinic), VerifyIdentity()
    one_word = Understood(
        intent=Intent.PROVIDE_INFO,
        slots=Slots.model_validate({"given_name": "Xiaobanakanko"}),
        confidence=0.45,
    )
    assert await task.handle(one_word, call) == Ask(templates.ASK_NAME_AGAIN, stalled=True)
    assert await task.handle(one_word, call) == Ask(templates.ASK_BIRTH_DATE)
    assert await task.handle(said(birth_date=SIOBHAN.born), call) == spell_after(SIOBHAN.born)
    step = await task.keyed(OKONKWO_KEYS, call)
    assert await first_name(task, call, step, "Siobhan") == Done(SIOBHAN.ref, said=templates.VERIFIED)


# ------------------------------------------------------- a spoken date of birth read back, and corrected


async def test_a_misheard_date_read_back_and_corrected_verifies_at_the_cost_of_one_try() -> None:
    """The line turned "July 25th" into "26th": the surname question reads back the date heard, the
    caller says the right one, and with the name right that is enough. The misheard date was a try."""
    clinic, gate = FakeScheduling(), FakeGate()
    call = context(clinic, gate=gate)
    task = VerifyIdentity()
    misheard = ANA.born + timedelta(days=1)
    await task.handle(said(given_name="Ana", family_name="Quispe"), call)
    assert await task.handle(said(birth_date=misheard), call) == spell_after(misheard)
    correction = RulesUnderstanding().parse(
        f"No, it's {ANA.born:%B} {ANA.born.day}, {ANA.born.year}.", _context(Expectation.FULL_NAME)
    )
    assert correction.slots.birth_date == ANA.born
    assert await task.handle(correction, call) == Done(ANA.ref, said=templates.VERIFIED)
    assert call.failed_attempts == 1 and gate.failures["Ana Quispe"] == 1


async def test_corrections_are_no_free_guesses_at_the_date() -> None:
    """A caller with the right name who "corrects" the date again and again: every date after the first
    counts as a failed try, and the call's tries end verification as wrong dates always did."""
    clinic = FakeScheduling()
    call = context(clinic)
    task = VerifyIdentity()
    await task.handle(said(given_name="Ana", family_name="Quispe"), call)
    guess = ANA.born + timedelta(days=40)
    step = await task.handle(said(birth_date=guess), call)
    for _ in range(MAX_VERIFICATION_ATTEMPTS):
        assert step == spell_after(guess)
        guess += timedelta(days=1)
        step = await task.handle(said(birth_date=guess), call)
    assert step == closed()
    assert clinic.lookups == MAX_VERIFICATION_ATTEMPTS  # no more dates looked up than without corrections
    assert verification_spent(call)


async def test_a_keyed_date_is_not_read_back() -> None:
    """Keys are heard exactly: nothing to confirm, and nothing said aloud that was only keyed."""
    call = context(FakeScheduling())
    task = VerifyIdentity()
    await task.handle(said(given_name="Shabbanda", family_name="Conquo"), call)
    assert await task.keyed(SIOBHAN.born.strftime("%m%d%Y"), call) == Ask(templates.ASK_SPELL_SURNAME)
    late = await task.handle(said(birth_date=SIOBHAN.born + timedelta(days=1)), call)
    assert late == Ask(templates.ASK_SPELL_SURNAME_AGAIN, stalled=True)  # not a correction: no date heard
