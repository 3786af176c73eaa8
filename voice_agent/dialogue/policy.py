"""The dialogue policy: a per-call state machine that alone decides what may happen.

Understanding (rules or a model) turns words into an ``Understood``; this module decides whether that
is allowed now, runs the scheduling operation bound to the call's verified patient, and answers with a
template filled from what FHIR returned. No code path takes a patient id, a slot id or an appointment
id from the caller or a model: slots and appointments are picked by position among those this code
offered (as in LiveKit's front-desk example), and the patient is the one verification bound to the call.

pipecat.flows was considered and not used: its nodes let an LLM choose transitions by calling
functions, and here the transitions must not depend on a model.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Literal, Protocol
from zoneinfo import ZoneInfo

from fhir_adapters import (
    AppointmentInfo,
    ClinicDirectory,
    FhirError,
    NotThisPatientsAppointment,
    PatientRef,
    RescheduleFailed,
    Scheduling,
    SlotOffer,
    SlotUnavailable,
    TimeOfDay,
    VisitType,
)
from voice_agent.dialogue import speech, templates
from voice_agent.dialogue.understanding import (
    DirectoryEntry,
    Expectation,
    Intent,
    Offered,
    Slots,
    Understanding,
    UnderstandingContext,
    Understood,
    VisitTypeEntry,
    spoken,
)
from voice_agent.dialogue.understanding.guardrails import Guardrail, screen
from voice_agent.privacy import remember_name
from voice_agent.session import CallSession, EndReason

log = logging.getLogger(__name__)

MAX_VERIFICATION_ATTEMPTS = 3
MAX_MISUNDERSTANDINGS = 3
#: Turns in a row that get the call nowhere (asked to repeat, not understood, a refused topic or rule
#: change): at this many a callback is offered, two more and the call ends, so no caller can hold a line.
MAX_STALLED_TURNS = 4
MAX_OFFERED = 3
_NAME_SPLITS = 3

Category = Literal[
    "emergency",
    "crisis",
    "medical_question",
    "verification_failed",
    "caller_request",
    "other_person_request",
    "rule_change_attempt",
    "system_error",
    "cannot_complete",
]


class EscalationPort(Protocol):
    """Where hand-offs to staff go (the encrypted escalation store). The policy passes the minimum."""

    async def escalate(
        self,
        *,
        category: Category,
        urgent: bool,
        patient: PatientRef | None,
        callback_number: str | None,
        session: CallSession,
    ) -> None: ...


GuardrailHook = Callable[[Guardrail], Awaitable[None]]


class State(StrEnum):
    TASK = "task"
    NAME = "name"
    BIRTH_DATE = "birth_date"
    CHOOSE_APPOINTMENT = "choose_appointment"
    PREFERENCE = "preference"
    RELAX = "relax"  # nothing matched the preference: offer the first available instead?
    CHOOSE_SLOT = "choose_slot"
    CONFIRM = "confirm"
    ANYTHING_ELSE = "anything_else"
    CALLBACK_OFFER = "callback_offer"
    CALLBACK_NUMBER = "callback_number"
    ENDED = "ended"


class Task(StrEnum):
    BOOK = "book"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    LIST = "list"
    AVAILABILITY = "availability"


_TASK_OF_INTENT = {
    Intent.BOOK: Task.BOOK,
    Intent.CANCEL: Task.CANCEL,
    Intent.RESCHEDULE: Task.RESCHEDULE,
    Intent.LIST_APPOINTMENTS: Task.LIST,
    Intent.ASK_AVAILABILITY: Task.AVAILABILITY,
}

_EXPECTING = {
    State.TASK: Expectation.TASK,
    State.NAME: Expectation.FULL_NAME,
    State.BIRTH_DATE: Expectation.BIRTH_DATE,
    State.CHOOSE_APPOINTMENT: Expectation.CHOOSE_APPOINTMENT,
    State.PREFERENCE: Expectation.PREFERENCE,
    State.RELAX: Expectation.CONFIRM,
    State.CHOOSE_SLOT: Expectation.CHOOSE_SLOT,
    State.CONFIRM: Expectation.CONFIRM,
    State.ANYTHING_ELSE: Expectation.ANYTHING_ELSE,
    State.CALLBACK_OFFER: Expectation.CALLBACK,
    State.CALLBACK_NUMBER: Expectation.CALLBACK,
    State.ENDED: Expectation.TASK,
}


@dataclass(frozen=True)
class Reply:
    text: str
    end: EndReason | None = None
    #: Put the call through to the front desk once ``text`` has been said (only with end="transferred").
    transfer: bool = False


class IdentityGate(Protocol):
    """Failed identity checks shared by every call and worker (``voice_agent.audit.attempts``)."""

    async def locked(self, *, name: str | None, number: str | None, source: str | None) -> bool: ...

    async def failed(self, *, name: str | None, number: str | None, source: str | None) -> None: ...


@dataclass
class Preferences:
    """What the caller wants of a slot; every field came through validated ``Slots``."""

    date_from: date | None = None
    date_to: date | None = None
    not_before: time | None = None
    not_after: time | None = None
    schedule_id: str | None = None
    visit_type: str | None = None
    after: datetime | None = None  # "other times": strictly later than what was offered

    def merge(self, slots: Slots) -> bool:
        """Fold in what the caller just said; True if anything changed."""
        changed = False
        if slots.soonest:  # the first available: what was said before about days and times no longer holds
            self.date_from = self.date_to = self.not_before = self.not_after = self.after = None
            changed = True
        if slots.date_from is not None or slots.date_to is not None:
            self.date_from, self.date_to, self.after, changed = slots.date_from, slots.date_to, None, True
        if slots.time_not_before is not None or slots.time_not_after is not None:
            self.not_before, self.not_after, changed = slots.time_not_before, slots.time_not_after, True
        if slots.practitioner is not None:
            self.schedule_id, changed = slots.practitioner, True
        if slots.visit_type is not None:
            self.visit_type, changed = slots.visit_type, True
        return changed

    def any(self) -> bool:
        return any(
            v is not None
            for v in (self.date_from, self.date_to, self.not_before, self.not_after, self.schedule_id)
        )


@dataclass
class _Callback:
    category: Category
    end_if_declined: bool = False
    resume: State = State.ANYTHING_ELSE


@dataclass
class Conversation:
    """One call's dialogue. ``greet()`` once, then ``respond()`` per caller turn."""

    scheduling: Scheduling
    session: CallSession
    understanding: Understanding
    escalations: EscalationPort
    zone: ZoneInfo
    clinic_name: str = "the clinic"
    on_guardrail: GuardrailHook | None = None
    practitioner_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    visit_type_aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    clock: Callable[[], datetime] | None = None
    #: Failed identity checks counted across calls (per claimed name, number, source); None: this call's
    #: own cap only.
    gate: IdentityGate | None = None
    #: Whether this call can be put through to the front desk right now (a SIP call, a front-desk
    #: address configured, within its hours). None: hand-offs are callbacks only.
    live_transfer: Callable[[], bool] | None = None

    state: State = State.TASK
    task: Task | None = None
    #: Failed identity checks over the whole call: never reset, whatever the caller does in between.
    attempts: int = 0
    misunderstandings: int = 0
    stalled: int = 0
    _stalling: bool = False
    prefs: Preferences = field(default_factory=Preferences)
    name: tuple[str, str] | None = None
    appointments: list[AppointmentInfo] = field(default_factory=list)
    target: AppointmentInfo | None = None
    offers: list[SlotOffer] = field(default_factory=list)
    chosen: SlotOffer | None = None
    callback: _Callback | None = None
    last_reply: str = ""
    _directory: ClinicDirectory | None = None

    # ------------------------------------------------------------------ entry points

    def now(self) -> datetime:
        return self.clock() if self.clock else datetime.now(self.zone)

    async def greet(self) -> Reply:
        return self._say(templates.GREETING.format(clinic=self.clinic_name))

    async def respond(self, utterance: str) -> Reply:
        if self.state is State.ENDED:
            return Reply(templates.GOODBYE.format(clinic=self.clinic_name), end="goodbye")
        self._stalling = False
        reply = await self._respond(utterance)
        if reply.end is not None:
            return reply
        self.stalled = self.stalled + 1 if self._stalling else 0
        if self.stalled >= MAX_STALLED_TURNS + 2:
            return self._end(templates.NO_PROGRESS_END, "goodbye")
        if self.stalled == MAX_STALLED_TURNS and self.state is not State.CALLBACK_OFFER:
            self.callback = _Callback("cannot_complete", end_if_declined=True)
            self.state = State.CALLBACK_OFFER
            return self._say(templates.TOO_MANY_MISUNDERSTANDINGS)
        return reply

    async def _respond(self, utterance: str) -> Reply:
        guard = screen(utterance)
        if guard is not None:
            return await self._guardrail(guard)
        understood = await self._understand(utterance)
        if understood.intent in (
            Intent.EMERGENCY,
            Intent.MEDICAL_ADVICE,
            Intent.OTHER_PERSON,
            Intent.CHANGE_RULES,
        ):
            return await self._guardrail(Guardrail.for_intent(understood.intent))
        if understood.intent is Intent.GOODBYE and self.state not in (
            State.CALLBACK_OFFER,
            State.CALLBACK_NUMBER,
        ):
            return self._end(templates.GOODBYE.format(clinic=self.clinic_name), "goodbye")
        if understood.intent is Intent.REPEAT and self.last_reply:
            self._stalling = True
            return Reply(self.last_reply)
        if understood.intent is Intent.HUMAN and self.state not in (
            State.CALLBACK_OFFER,
            State.CALLBACK_NUMBER,
        ):
            self.callback = _Callback("caller_request", end_if_declined=False, resume=self.state)
            return await self._accept_callback()
        try:
            return await self._dispatch(understood)
        except FhirError as error:
            log.warning("scheduling operation failed (%s)", type(error).__name__)
            self.callback = _Callback("system_error", end_if_declined=True)
            self.state = State.CALLBACK_OFFER
            return self._say(templates.SYSTEM_TROUBLE)

    async def keyed(self, digits: str) -> Reply:
        """Keypad (DTMF) entry, already gathered up to # or a pause: a date of birth as MMDDYYYY when one
        is asked for, a callback number when that is; anywhere else the caller is asked to speak."""
        if self.state is State.ENDED:
            return Reply(templates.GOODBYE.format(clinic=self.clinic_name), end="goodbye")
        try:
            if self.state is State.BIRTH_DATE:
                born = keyed_date(digits, today=self.now().date())
                if born is None:
                    return self._misunderstood(templates.ASK_BIRTH_DATE_KEYED_AGAIN)
                return await self._verify(born)
            if self.state is State.CALLBACK_NUMBER:
                return await self._on_callback_number(
                    Understood(intent=Intent.UNKNOWN, slots=Slots(phone=digits[:20]), confidence=1.0)
                )
        except FhirError as error:
            log.warning("scheduling operation failed (%s)", type(error).__name__)
            self.callback = _Callback("system_error", end_if_declined=True)
            self.state = State.CALLBACK_OFFER
            return self._say(templates.SYSTEM_TROUBLE)
        return self._say(templates.KEYPAD_NOT_NOW.format(question=self._question()))

    def awaits_more(self, utterance: str) -> bool:
        """True when ``utterance`` reads as the first part of an answer spoken in pieces: a date of birth
        without its year, a callback number short of ten digits. A voice channel then waits a moment
        for the rest instead of answering (and re-asking) in the middle of the caller's answer."""
        text = spoken.spoken_numbers(spoken.fold(utterance))
        if self.state is State.BIRTH_DATE:
            born, said = spoken.parse_birth_date(text, self.now().date())
            return born is None and said
        if self.state is State.CALLBACK_NUMBER:
            return 0 < sum(c.isdigit() for c in text) < 10
        return False

    # ------------------------------------------------------------------ understanding

    async def _understand(self, utterance: str) -> Understood:
        directory = await self._clinic()
        context = UnderstandingContext(
            now=self.now(),
            expecting=_EXPECTING[self.state],
            practitioners=tuple(
                DirectoryEntry(
                    s.schedule_id, s.practitioner, self.practitioner_aliases.get(s.schedule_id, ())
                )
                for s in directory.schedules
            ),
            visit_types=tuple(
                VisitTypeEntry(v.code, v.display, self.visit_type_aliases.get(v.code, ()))
                for v in directory.visit_types
            ),
            offered=Offered(
                starts=tuple(o.start for o in self.offers),
                practitioners=tuple(o.schedule_id for o in self.offers),
            ),
        )
        return await self.understanding.understand(utterance, context)

    async def _clinic(self) -> ClinicDirectory:
        if self._directory is None:
            try:
                self._directory = await self.scheduling.directory()
            except FhirError:
                return ClinicDirectory(())
        return self._directory

    # ------------------------------------------------------------------ the state machine

    async def _dispatch(self, u: Understood) -> Reply:
        handler = {
            State.TASK: self._on_task,
            State.ANYTHING_ELSE: self._on_anything_else,
            State.NAME: self._on_name,
            State.BIRTH_DATE: self._on_birth_date,
            State.CHOOSE_APPOINTMENT: self._on_choose_appointment,
            State.PREFERENCE: self._on_preference,
            State.RELAX: self._on_relax,
            State.CHOOSE_SLOT: self._on_choose_slot,
            State.CONFIRM: self._on_confirm,
            State.CALLBACK_OFFER: self._on_callback_offer,
            State.CALLBACK_NUMBER: self._on_callback_number,
        }[self.state]
        return await handler(u)

    async def _on_task(self, u: Understood) -> Reply:
        task = _TASK_OF_INTENT.get(u.intent)
        if task is None and u.slots.given_name and u.slots.family_name and self.session.patient is None:
            return await self._on_name(u)  # the caller led with their name
        if task is None:
            return self._misunderstood(templates.ASK_TASK)
        return await self._begin(task, u.slots)

    async def _on_anything_else(self, u: Understood) -> Reply:
        if u.intent in (Intent.NOTHING_ELSE, Intent.DENY):
            return self._end(templates.GOODBYE.format(clinic=self.clinic_name), "goodbye")
        if u.intent is Intent.AFFIRM:
            self.state = State.TASK
            return self._say(templates.ASK_TASK)
        return await self._on_task(u)

    async def _begin(self, task: Task, slots: Slots) -> Reply:
        self.task, self.misunderstandings = task, 0
        self.offers, self.chosen, self.target = [], None, None
        self.prefs = Preferences()
        self.prefs.merge(slots)
        if self.session.patient is None:
            if self._verification_spent():
                return self._verification_closed()
            self.state = State.NAME
            return self._say(templates.VERIFY_INTRO)
        return await self._start_task()

    async def _start_task(self, prefix: str = "") -> Reply:
        patient = self._patient()
        if self.task in (Task.BOOK, Task.AVAILABILITY):
            if self.prefs.any():
                return await self._offer(prefix)
            self.state = State.PREFERENCE
            return self._say(_join(prefix, templates.ASK_PREFERENCE))
        self.appointments = await self.scheduling.upcoming_appointments(patient, now=self.now())
        today = self.now().date()
        if self.task is Task.LIST:
            self.state = State.ANYTHING_ELSE
            return self._say(_join(prefix, self._listing(today), templates.ANYTHING_ELSE))
        if not self.appointments:
            self.state = State.ANYTHING_ELSE
            return self._say(_join(prefix, templates.NO_APPOINTMENTS, templates.ANYTHING_ELSE))
        if len(self.appointments) == 1:
            return await self._with_target(self.appointments[0], prefix)
        self.state = State.CHOOSE_APPOINTMENT
        return self._say(_join(prefix, self._which_appointment(today)))

    async def _with_target(self, appointment: AppointmentInfo, prefix: str = "") -> Reply:
        self.target = appointment
        spoken = speech.appointment(appointment, self.zone, today=self.now().date())
        if self.task is Task.CANCEL:
            self.state = State.CONFIRM
            return self._say(_join(prefix, templates.CONFIRM_CANCEL.format(appointment=spoken)))
        if self.prefs.any():
            return await self._offer(prefix)
        self.state = State.PREFERENCE
        return self._say(_join(prefix, templates.RESCHEDULE_WHEN.format(appointment=spoken)))

    # --- identity

    async def _on_name(self, u: Understood) -> Reply:
        if task := _TASK_OF_INTENT.get(u.intent):
            self.task = task
        if self._verification_spent():
            return self._verification_closed()
        given, family = u.slots.given_name, u.slots.family_name
        if not given or not family:
            return self._misunderstood(templates.ASK_NAME_AGAIN)
        self.name = (given, family)
        remember_name(f"{given} {family}")
        self.misunderstandings = 0
        if u.slots.birth_date is not None:
            return await self._verify(u.slots.birth_date)
        self.state = State.BIRTH_DATE
        return self._say(templates.ASK_BIRTH_DATE)

    async def _on_birth_date(self, u: Understood) -> Reply:
        if u.slots.birth_date is None:
            return self._misunderstood(templates.ASK_BIRTH_DATE_AGAIN)
        return await self._verify(u.slots.birth_date)

    async def _verify(self, born: date) -> Reply:
        assert self.name is not None
        if self._verification_spent():
            return self._verification_closed()
        claimed = {
            "name": " ".join(self.name),
            "number": self.session.caller_number,
            "source": self.session.source,
        }
        found: list[PatientRef] = []
        if self.gate is not None and await self.gate.locked(**claimed):
            return await self._failed_attempt(claimed)  # no lookup, and the words of any failure
        for given, family in _name_splits(*self.name):
            for ref in await self.scheduling.find_patient(given=given, family=family, birth_date=born):
                if ref not in found:
                    found.append(ref)
            if found:
                break
        if len(found) > 1 and self.session.caller_number:
            # Two records share this name and birth date: the calling number may tell them apart.
            found = [
                ref for ref in found if await self.scheduling.phone_on_record(ref, self.session.caller_number)
            ]
        self.name = None
        if len(found) == 1:
            self.session.patient = found[0]
            self.misunderstandings = 0  # the failed attempts stand: the call's cap is for the whole call
            if self.task is None:
                self.state = State.TASK
                return self._say(_join(templates.VERIFIED, templates.ASK_TASK))
            return await self._start_task(templates.VERIFIED)
        return await self._failed_attempt(claimed)

    async def _failed_attempt(self, claimed: dict[str, str | None]) -> Reply:
        # Same words, at the same attempt, whether no record matched, one with another birth date,
        # several that the calling number could not tell apart, or the name is locked out across calls:
        # the caller learns nothing of the records.
        self.name = None
        if self.gate is not None:
            await self.gate.failed(**claimed)
        self.attempts += 1
        if self.attempts >= MAX_VERIFICATION_ATTEMPTS:
            return self._verification_closed()
        self.state = State.NAME
        return self._say(templates.VERIFY_FAILED_RETRY)

    def _verification_spent(self) -> bool:
        """The call's failed attempts are used up: there is no path back into verification in it."""
        return self.session.patient is None and self.attempts >= MAX_VERIFICATION_ATTEMPTS

    def _verification_closed(self) -> Reply:
        """The call's failed attempts are spent: a callback or transfer, and the call ends either way."""
        self.name = None
        self.callback = _Callback("verification_failed", end_if_declined=True)
        self.state = State.CALLBACK_OFFER
        return self._say(templates.VERIFY_FAILED_FINAL)

    # --- appointments

    async def _on_choose_appointment(self, u: Understood) -> Reply:
        task = _TASK_OF_INTENT.get(u.intent)
        if task is not None and task is not self.task:  # the caller changed their mind
            return await self._begin(task, u.slots)
        choice = self._pick_appointment(u)
        if choice is None:
            return self._misunderstood(self._which_appointment(self.now().date()))
        self.prefs.merge(u.slots.model_copy(update={"date_from": None, "date_to": None}))
        return await self._with_target(choice)

    def _pick_appointment(self, u: Understood) -> AppointmentInfo | None:
        shown = self.appointments[:MAX_OFFERED]
        if u.slots.option is not None and u.slots.option <= len(shown):
            return shown[u.slots.option - 1]
        matches = shown
        if u.slots.date_from is not None:
            matches = [
                a for a in matches if a.start and a.start.astimezone(self.zone).date() == u.slots.date_from
            ]
        if u.slots.practitioner is not None:
            schedule = self._directory.schedule(u.slots.practitioner) if self._directory else None
            matches = [a for a in matches if schedule and a.practitioner == schedule.practitioner]
        if u.slots.time_not_before is not None:
            matches = [
                a
                for a in matches
                if a.start and a.start.astimezone(self.zone).time() >= u.slots.time_not_before
            ]
        narrowed = matches is not shown
        return matches[0] if narrowed and len(matches) == 1 else None

    # --- slots

    async def _on_preference(self, u: Understood) -> Reply:
        if (
            (task := _TASK_OF_INTENT.get(u.intent))
            and task is not self.task
            and task is not Task.AVAILABILITY
        ):
            return await self._begin(task, u.slots)
        self.prefs.merge(u.slots)
        return await self._offer()

    async def _on_relax(self, u: Understood) -> Reply:
        if u.slots.soonest and u.slots.practitioner is None:
            # "The first available time." answers "Would you like the first available time instead?"
            self.prefs = Preferences(visit_type=self.prefs.visit_type)
        if self.prefs.merge(u.slots):
            return await self._offer()
        if u.intent is Intent.AFFIRM:
            visit_type = self.prefs.visit_type
            self.prefs = Preferences(visit_type=visit_type)
            return await self._offer()
        if u.intent in (Intent.DENY, Intent.NOTHING_ELSE):
            self.state = State.PREFERENCE
            return self._say(templates.ASK_PREFERENCE)
        return self._misunderstood(templates.ASK_PREFERENCE)

    async def _offer(self, prefix: str = "") -> Reply:
        zone, today = self.zone, self.now().date()
        start = _at(self.prefs.date_from, zone) if self.prefs.date_from else None
        if self.prefs.after is not None:
            start = max(start, self.prefs.after) if start else self.prefs.after
        end = _at(self.prefs.date_to + timedelta(days=1), zone) if self.prefs.date_to else None
        window = (
            TimeOfDay(self.prefs.not_before, self.prefs.not_after)
            if self.prefs.not_before or self.prefs.not_after
            else None
        )
        visit = self._visit_type()
        offers = await self.scheduling.find_free_slots(
            start=start,
            end=end,
            schedule_ids=[self.prefs.schedule_id] if self.prefs.schedule_id else None,
            visit_type=visit,
            time_of_day=window,
            limit=MAX_OFFERED,
        )
        if self.target is not None:
            offers = [o for o in offers if o.slot_id not in self.target.slot_ids]
        if not offers:
            if self.prefs.date_from is not None:
                limit = await self.scheduling.bookable_until(
                    schedule_ids=[self.prefs.schedule_id] if self.prefs.schedule_id else None,
                    visit_type=visit,
                )
                last_day = (limit - timedelta(microseconds=1)).astimezone(zone).date()
                if self.prefs.date_from > last_day:  # not "nothing free": the calendar is not open yet
                    self.state = State.RELAX
                    beyond = templates.BEYOND_HORIZON.format(
                        day=speech.day(last_day, today=today), window=self._describe_window()
                    )
                    return self._say(_join(prefix, beyond))
            if self.prefs.any():
                self.state = State.RELAX
                return self._say(_join(prefix, templates.NO_SLOTS.format(window=self._describe_window())))
            self.callback = _Callback("cannot_complete", end_if_declined=False)
            self.state = State.CALLBACK_OFFER
            return self._say(_join(prefix, templates.NO_SLOTS_AT_ALL))
        self.offers, self.chosen = offers, None
        self.state = State.CHOOSE_SLOT
        if len(offers) == 1:
            spoken = speech.offer(offers[0], zone, today=today)
            return self._say(_join(prefix, templates.OFFER_ONE_SLOT.format(option=spoken)))
        return self._say(
            _join(prefix, templates.OFFER_SLOTS.format(options=speech.offers(offers, zone, today=today)))
        )

    async def _on_choose_slot(self, u: Understood) -> Reply:
        if (task := _TASK_OF_INTENT.get(u.intent)) and task not in (self.task, Task.AVAILABILITY):
            return await self._begin(task, u.slots)
        if u.slots.option is not None and u.slots.option <= len(self.offers):
            return self._confirm(self.offers[u.slots.option - 1])
        if len(self.offers) == 1 and u.intent is Intent.AFFIRM:
            return self._confirm(self.offers[0])
        if self.prefs.merge(u.slots):
            return await self._offer()
        if u.intent in (Intent.DENY, Intent.NOTHING_ELSE):
            self.prefs.after = max(o.start for o in self.offers)
            return await self._offer()
        spoken = speech.offers(self.offers, self.zone, today=self.now().date())
        return self._misunderstood(templates.WHICH_SLOT.format(options=spoken))

    def _confirm(self, offer: SlotOffer) -> Reply:
        self.chosen, self.state = offer, State.CONFIRM
        today = self.now().date()
        option = speech.offer(offer, self.zone, today=today)
        if self.task is Task.RESCHEDULE and self.target is not None:
            current = speech.appointment(self.target, self.zone, today=today)
            return self._say(templates.CONFIRM_RESCHEDULE.format(appointment=current, option=option))
        visit = self._visit_type()
        if visit is None:
            return self._say(templates.CONFIRM_BOOK.format(option=option))
        return self._say(
            templates.CONFIRM_BOOK_VISIT.format(option=option, visit=speech.article(speech.visit(visit)))
        )

    async def _on_confirm(self, u: Understood) -> Reply:
        if (
            (task := _TASK_OF_INTENT.get(u.intent))
            and task is not self.task
            and task is not Task.AVAILABILITY
        ):
            return await self._begin(task, u.slots)
        if u.intent is Intent.AFFIRM:
            return await self._commit()
        if u.intent in (Intent.DENY, Intent.NOTHING_ELSE):
            if self.task is Task.CANCEL:
                self.state = State.ANYTHING_ELSE
                return self._say(templates.NOT_CANCELLED)
            if self.task is Task.RESCHEDULE and self.chosen is None:
                self.state = State.ANYTHING_ELSE
                return self._say(templates.NOT_RESCHEDULED)
            self.chosen = None
            self.state = State.PREFERENCE
            return self._say(templates.NOT_BOOKED)
        if self.chosen is not None and (u.slots.option is not None or self.prefs.merge(u.slots)):
            return await self._on_choose_slot(u)
        return self._misunderstood(self.last_reply)

    async def _commit(self) -> Reply:
        patient, today = self._patient(), self.now().date()
        try:
            if self.task is Task.CANCEL:
                assert self.target is not None
                done = await self.scheduling.cancel(patient, self.target.appointment_id)
                self.state = State.ANYTHING_ELSE
                spoken = speech.appointment(done, self.zone, today=today)
                return self._say(templates.CANCELLED.format(appointment=spoken))
            assert self.chosen is not None
            if self.task is Task.RESCHEDULE:
                assert self.target is not None
                done = await self.scheduling.reschedule(
                    patient, self.target.appointment_id, self.chosen.slot_id, visit_type=self._visit_type()
                )
                self.state = State.ANYTHING_ELSE
                return self._say(
                    templates.RESCHEDULED.format(
                        appointment=_capital(speech.appointment(done, self.zone, today=today))
                    )
                )
            done = await self.scheduling.book(patient, self.chosen.slot_id, visit_type=self._visit_type())
        except SlotUnavailable:
            taken = self.chosen
            self.chosen = None
            if taken is not None:
                self.prefs.after = taken.start - timedelta(seconds=1)
            return await self._offer(templates.SLOT_TAKEN)
        except RescheduleFailed:
            assert self.target is not None
            self.state = State.ANYTHING_ELSE
            spoken = speech.appointment(self.target, self.zone, today=today)
            return self._say(templates.RESCHEDULE_FAILED.format(appointment=spoken))
        except NotThisPatientsAppointment:
            self.state = State.ANYTHING_ELSE
            return self._say(_join(templates.NO_APPOINTMENTS, templates.ANYTHING_ELSE))
        self.state = State.ANYTHING_ELSE
        return self._say(
            templates.BOOKED.format(appointment=speech.appointment(done, self.zone, today=today))
        )

    # --- hand-offs

    async def _guardrail(self, guard: Guardrail) -> Reply:
        if self.on_guardrail is not None:
            await self.on_guardrail(guard)
        if guard.kind in ("emergency", "crisis"):
            await self._escalate("emergency" if guard.kind == "emergency" else "crisis", urgent=True)
            text = templates.EMERGENCY if guard.kind == "emergency" else templates.CRISIS
            return self._end(text, "escalated")
        if guard.kind == "change_rules":
            self._stalling = True
            return self._say(templates.RULES_REFUSAL.format(question=self._question()))
        category: Category = "medical_question" if guard.kind == "medical_advice" else "other_person_request"
        resume = self.state if self.state not in (State.CALLBACK_OFFER, State.CALLBACK_NUMBER) else State.TASK
        self.callback = _Callback(category, end_if_declined=False, resume=resume)
        self.state = State.CALLBACK_OFFER
        return self._say(
            templates.NO_MEDICAL_ADVICE if guard.kind == "medical_advice" else templates.ONLY_YOUR_OWN
        )

    async def _on_callback_offer(self, u: Understood) -> Reply:
        assert self.callback is not None
        if u.intent in (Intent.AFFIRM, Intent.HUMAN) or u.slots.phone:
            if u.slots.phone:
                return await self._escalate_and_end(u.slots.phone)
            return await self._accept_callback()
        if u.intent in (Intent.DENY, Intent.NOTHING_ELSE, Intent.GOODBYE):
            if self.callback.end_if_declined or u.intent is Intent.GOODBYE:
                return self._end(templates.CALLBACK_DECLINED_END, "goodbye")
            self.state = self.callback.resume
            self.callback = None
            return self._say(templates.CALLBACK_DECLINED.format(question=self._question()))
        return self._misunderstood(templates.TOO_MANY_MISUNDERSTANDINGS)

    async def _accept_callback(self) -> Reply:
        if self._can_transfer():
            # A person now rather than a callback later; ``transfer_failed`` falls back to the callback.
            return self._end(templates.TRANSFERRING, "transferred", transfer=True)
        if self.session.caller_number:
            return await self._escalate_and_end(self.session.caller_number)
        self.state = State.CALLBACK_NUMBER
        return self._say(templates.ASK_CALLBACK_NUMBER)

    async def _on_callback_number(self, u: Understood) -> Reply:
        digits = "".join(c for c in (u.slots.phone or "") if c.isdigit())
        if len(digits) >= 10:
            return await self._escalate_and_end(digits)
        if u.intent in (Intent.DENY, Intent.GOODBYE):
            return self._end(templates.CALLBACK_DECLINED_END, "goodbye")
        return self._misunderstood(templates.ASK_CALLBACK_NUMBER)

    async def _escalate_and_end(self, number: str) -> Reply:
        assert self.callback is not None
        # Urgent hand-offs (emergency, crisis) never wait for a callback offer; these are all routine.
        await self._escalate(self.callback.category, urgent=False, number=number)
        return self._end(templates.CALLBACK_CONFIRMED, "escalated")

    async def transfer_failed(self) -> Reply:
        """The front desk could not be reached: the hand-off becomes a callback, and the caller hears so."""
        category = self.callback.category if self.callback is not None else "caller_request"
        self.callback = _Callback(category, end_if_declined=True)
        if self.session.caller_number:
            await self._escalate(category, urgent=False, number=self.session.caller_number)
            return self._end(templates.TRANSFER_FAILED_CALLBACK, "escalated")
        self.state = State.CALLBACK_NUMBER
        return self._say(templates.TRANSFER_FAILED_ASK_NUMBER)

    def _can_transfer(self) -> bool:
        return self.live_transfer is not None and self.live_transfer()

    async def _escalate(self, category: Category, *, urgent: bool, number: str | None = None) -> None:
        await self.escalations.escalate(
            category=category,
            urgent=urgent,
            patient=self.session.patient,
            callback_number=number or self.session.caller_number,
            session=self.session,
        )

    # ------------------------------------------------------------------ small things

    def _patient(self) -> PatientRef:
        """The call's verified patient: the only patient any operation may be about."""
        if self.session.patient is None:
            raise RuntimeError("no verified patient bound to this call")
        return self.session.patient

    def _visit_type(self) -> VisitType | None:
        code = self.prefs.visit_type
        if code is None and self.target is not None:
            return self.target.visit_type
        if code is None or self._directory is None:
            return None
        return next((v for v in self._directory.visit_types if v.code == code), None)

    def _listing(self, today: date) -> str:
        if not self.appointments:
            return templates.NO_APPOINTMENTS
        spoken = [speech.appointment(a, self.zone, today=today) for a in self.appointments[:MAX_OFFERED]]
        if len(spoken) == 1:
            text = templates.YOUR_APPOINTMENTS_ONE.format(first=spoken[0])
        else:
            text = templates.YOUR_APPOINTMENTS_MANY.format(
                count=len(self.appointments), listing=_capital(speech.joined(spoken))
            )
        more = len(self.appointments) - MAX_OFFERED
        if more <= 0:
            return text
        return _join(text, templates.AND_ONE_MORE if more == 1 else templates.AND_MORE.format(more=more))

    def _which_appointment(self, today: date) -> str:
        spoken = [speech.appointment(a, self.zone, today=today) for a in self.appointments[:MAX_OFFERED]]
        return templates.WHICH_APPOINTMENT.format(options=speech.choices(spoken))

    def _describe_window(self) -> str:
        today, parts = self.now().date(), []
        if (
            self.prefs.schedule_id
            and self._directory
            and (s := self._directory.schedule(self.prefs.schedule_id))
        ):
            parts.append(f"with {s.practitioner}")
        if self.prefs.date_from is not None:
            if self.prefs.date_to in (None, self.prefs.date_from):
                parts.append(speech.on_day(self.prefs.date_from, today=today))
            else:
                assert self.prefs.date_to is not None
                parts.append(
                    f"between {speech.day(self.prefs.date_from, today=today)} "
                    f"and {speech.day(self.prefs.date_to, today=today)}"
                )
        if self.prefs.not_before and self.prefs.not_after:
            parts.append(f"between {_clock(self.prefs.not_before)} and {_clock(self.prefs.not_after)}")
        elif self.prefs.not_before:
            parts.append(f"after {_clock(self.prefs.not_before)}")
        elif self.prefs.not_after:
            parts.append(f"before {_clock(self.prefs.not_after)}")
        return " ".join(parts) or "then"

    def _question(self) -> str:
        """The question of the current state, to re-ask after an interruption."""
        return {
            State.NAME: templates.ASK_NAME,
            State.BIRTH_DATE: templates.ASK_BIRTH_DATE,
            State.PREFERENCE: templates.ASK_PREFERENCE,
            State.ANYTHING_ELSE: templates.ANYTHING_ELSE,
        }.get(self.state, self.last_reply if self.state is not State.TASK else templates.ASK_TASK)

    def _misunderstood(self, question: str) -> Reply:
        self._stalling = True
        self.misunderstandings += 1
        if self.misunderstandings >= MAX_MISUNDERSTANDINGS and self.state is not State.CALLBACK_OFFER:
            self.callback = _Callback("cannot_complete", end_if_declined=True)
            self.state = State.CALLBACK_OFFER
            return self._say(templates.TOO_MANY_MISUNDERSTANDINGS)
        if self.misunderstandings >= MAX_MISUNDERSTANDINGS + 2:
            return self._end(templates.CALLBACK_DECLINED_END, "goodbye")
        if question.startswith("Sorry"):  # the re-ask already apologises
            return self._say(question)
        return self._say(templates.DIDNT_CATCH.format(question=question))

    def _say(self, text: str) -> Reply:
        if self.state is State.CALLBACK_OFFER and self._can_transfer():
            for callback_words, transfer_words in templates.TRANSFER_OFFERS.items():
                text = text.replace(callback_words, transfer_words)
        self.last_reply = text
        return Reply(text)

    def _end(self, text: str, reason: EndReason, *, transfer: bool = False) -> Reply:
        self.state = State.ENDED
        self.last_reply = text
        return Reply(text, end=reason, transfer=transfer)


def keyed_date(digits: str, *, today: date) -> date | None:
    """MMDDYYYY from the keypad; None unless it is a real, past date after 1900."""
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        born = date(int(digits[4:]), int(digits[:2]), int(digits[2:4]))
    except ValueError:
        return None
    return born if date(1900, 1, 1) <= born <= today else None


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _at(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0, 0), tzinfo=zone)


def _clock(moment: time) -> str:
    return speech.clock(datetime.combine(date(2000, 1, 1), moment))


def _name_splits(given: str, family: str) -> Sequence[tuple[str, str]]:
    """The split as heard first, then the other ways to cut a multi-word name ("Mary Jane Smith Jones")."""
    words = f"{given} {family}".split()
    splits = [(given, family)]
    for cut in range(1, len(words)):
        candidate = (" ".join(words[:cut]), " ".join(words[cut:]))
        if candidate not in splits:
            splits.append(candidate)
    return splits[:_NAME_SPLITS]
