"""The conductor: one call's dialogue, the policy that alone decides what may happen.

Understanding (rules or a model) turns words into an ``Understood``; the conductor decides whether that
is allowed now and hands it to the task asking the current question (``tasks/``: each returns a typed
result, as LiveKit Agents' ``AgentTask[ResultT]`` does). It sequences the tasks per intent (book, cancel,
reschedule, list) and owns, once, what every task shares: the guardrails, task switches, goodbyes, the
callback offer, the FHIR-error fallback and the progress limit. No code path takes a patient id, a slot
id or an appointment id from the caller or a model: slots and appointments are picked by position among
those read out, and the patient is the one verification bound to the call. Every reply is a template
filled from FHIR.

pipecat.flows was considered and not used: its nodes let an LLM choose transitions by calling
functions, and here the transitions must not depend on a model.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from fhir_adapters import (
    AppointmentInfo,
    FhirError,
    NotThisPatientsAppointment,
    PatientRef,
    RescheduleFailed,
    SlotOffer,
    SlotUnavailable,
)
from voice_agent.dialogue import speech, templates
from voice_agent.dialogue.context import MAX_OFFERED, CallContext, join
from voice_agent.dialogue.ports import Category, EscalationPort, GuardrailHook, IdentityGate, Scheduling
from voice_agent.dialogue.reply import Reply, State
from voice_agent.dialogue.tasks.base import Ask, Closed, DialogueTask, Done, Step, expecting
from voice_agent.dialogue.tasks.choose_appointment import ChooseAppointment
from voice_agent.dialogue.tasks.collect_callback import CallbackAnswer, CollectCallback
from voice_agent.dialogue.tasks.confirm import Confirm
from voice_agent.dialogue.tasks.find_slot import FindSlot, Preferences
from voice_agent.dialogue.tasks.verify_identity import VerifyIdentity, closed, verification_spent
from voice_agent.dialogue.understanding import (
    DirectoryEntry,
    Intent,
    Offered,
    Slots,
    Understanding,
    UnderstandingContext,
    Understood,
    VisitTypeEntry,
)
from voice_agent.dialogue.understanding.guardrails import GUARDED_INTENTS, Guardrail, screen
from voice_agent.session import CallSession, EndReason

__all__ = ["MAX_STALLED_TURNS", "Conversation", "Task"]

log = logging.getLogger(__name__)

#: Turns in a row that get the call nowhere (asked to repeat, not understood, a refused topic or rule
#: change): at this many a callback is offered; one more and the call ends, so no caller holds a line.
MAX_STALLED_TURNS = 3

T = TypeVar("T")


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


@dataclass
class _Active(Generic[T]):
    """The task asking the current question, and what the conductor does with its result."""

    task: DialogueTask[T]
    then: Callable[[T, str], Awaitable[Reply]]


@dataclass
class _Callback:
    category: Category
    end_if_declined: bool
    #: Where a declined offer goes back to: the task that was interrupted, or an idle question.
    resume: _Active[Any] | None = None
    resume_state: State = State.ANYTHING_ELSE


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

    last_reply: str = ""
    #: Consecutive turns without progress (the progress limit's count).
    stalled: int = 0
    call: CallContext = field(init=False)
    _task: Task | None = field(default=None, init=False)
    _active: _Active[Any] | None = field(default=None, init=False)
    _idle: State = field(default=State.TASK, init=False)
    _callback: _Callback | None = field(default=None, init=False)
    _prefs: Preferences = field(default_factory=Preferences, init=False)
    _find: FindSlot | None = field(default=None, init=False)
    _target: AppointmentInfo | None = field(default=None, init=False)
    _chosen: SlotOffer | None = field(default=None, init=False)
    _answer: Understood | None = field(default=None, init=False)
    _stall: bool = field(default=False, init=False)
    _repeat_asked: bool = field(default=False, init=False)
    _said: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.call = CallContext(self.scheduling, self.session, self.zone, self.clock, self.gate)

    # ------------------------------------------------------------------ what the channels see

    @property
    def state(self) -> State:
        return self._active.task.state if self._active is not None else self._idle

    @property
    def attempts(self) -> int:
        """Failed identity checks over the whole call."""
        return self.call.failed_attempts

    def now(self) -> datetime:
        return self.call.now()

    async def greet(self) -> Reply:
        return self._say(templates.GREETING.format(clinic=self.clinic_name))

    async def respond(self, utterance: str) -> Reply:
        if self.state is State.ENDED:
            return Reply(templates.GOODBYE.format(clinic=self.clinic_name), end="goodbye")
        self._stall = self._repeat_asked = False
        reply = await self._turn(utterance)
        return self._within_progress_limit(reply)

    async def keyed(self, digits: str) -> Reply:
        """Keypad (DTMF) entry, already gathered up to # or a pause: a date of birth as MMDDYYYY when one
        is asked for, a callback number when that is; anywhere else the caller is asked to speak."""
        if self.state is State.ENDED:
            return Reply(templates.GOODBYE.format(clinic=self.clinic_name), end="goodbye")
        active = self._active
        try:
            step = await active.task.keyed(digits, self.call) if active is not None else None
            if active is not None and step is not None:
                return await self._run(active, step)
        except FhirError as error:
            return self._system_trouble(error)
        return self._say(templates.KEYPAD_NOT_NOW.format(question=self._question()))

    def awaits_more(self, utterance: str) -> bool:
        """True when ``utterance`` reads as the first part of an answer spoken in pieces: a date of birth
        without its year, a callback number short of ten digits. A voice channel then waits a moment
        for the rest instead of answering (and re-asking) in the middle of the caller's answer."""
        return self._active is not None and self._active.task.awaits_more(utterance, self.call)

    def complete_answer(self, utterance: str) -> bool:
        """Whether ``utterance`` is a whole answer to the current question: turn-taking may answer now."""
        return self._active is not None and self._active.task.complete(utterance, self.call)

    async def transfer_failed(self) -> Reply:
        """The front desk could not be reached: the hand-off becomes a callback, and the caller hears so."""
        category = self._callback.category if self._callback is not None else "caller_request"
        self._callback = _Callback(category, end_if_declined=True)
        if self.session.caller_number:
            await self._escalate(category, urgent=False, number=self.session.caller_number)
            return self._end(templates.TRANSFER_FAILED_CALLBACK, "escalated")
        collect = CollectCallback(templates.TRANSFER_FAILED_ASK_NUMBER, asking_number=True)
        return await self._run(
            _Active(collect, self._on_callback_answer), Ask(templates.TRANSFER_FAILED_ASK_NUMBER)
        )

    # ------------------------------------------------------------------ one turn

    async def _turn(self, utterance: str) -> Reply:
        guard = screen(utterance)
        if guard is not None:
            return await self._guardrail(guard)
        answer = await self._understand(utterance)
        self._answer = answer
        if answer.intent in GUARDED_INTENTS:
            return await self._guardrail(Guardrail.for_intent(answer.intent))
        in_callback = self.state in (State.CALLBACK_OFFER, State.CALLBACK_NUMBER)
        if answer.intent is Intent.GOODBYE and not in_callback:
            return self._end(templates.GOODBYE.format(clinic=self.clinic_name), "goodbye")
        if answer.intent is Intent.REPEAT and self.last_reply:
            self._stall = self._repeat_asked = True
            return self._say(self.last_reply)
        if answer.intent is Intent.HUMAN and not in_callback:
            self._callback = _Callback("caller_request", False, self._active, self._idle)
            return await self._accept_callback()
        try:
            return await self._dispatch(answer)
        except FhirError as error:
            return self._system_trouble(error)

    async def _dispatch(self, answer: Understood) -> Reply:
        active = self._active
        wanted = _TASK_OF_INTENT.get(answer.intent)
        if active is None:
            return await self._on_idle(answer, wanted)
        task = active.task
        if isinstance(task, VerifyIdentity):
            if wanted is not None:
                self._task = wanted  # what they want once verified; the identity check goes on
        elif not isinstance(task, CollectCallback) and wanted not in (None, self._task, Task.AVAILABILITY):
            assert wanted is not None
            return await self._begin(wanted, answer.slots)  # the caller changed their mind
        find = self._find
        if (
            isinstance(task, Confirm)
            and self._chosen is not None
            and find is not None
            and (answer.slots.option is not None or find.prefs.would_change(answer.slots))
        ):
            # another day or time at the read-back ("no wait, Tuesday"): back to the times
            return await self._run(_Active(find, self._slot_chosen), await find.revise(answer, self.call))
        return await self._run(active, await task.handle(answer, self.call))

    async def _on_idle(self, answer: Understood, wanted: Task | None) -> Reply:
        if self._idle is State.ANYTHING_ELSE:
            if answer.intent in (Intent.NOTHING_ELSE, Intent.DENY):
                return self._end(templates.GOODBYE.format(clinic=self.clinic_name), "goodbye")
            if answer.intent is Intent.AFFIRM and wanted is None:
                self._idle = State.TASK
                return self._say(templates.ASK_TASK)
        if wanted is None:
            slots = answer.slots
            if slots.given_name and slots.family_name and self.session.patient is None:
                return await self._verify_first(answer)  # the caller led with their name
            return self._ask(Ask(templates.ASK_TASK, stalled=True))
        return await self._begin(wanted, answer.slots)

    # ------------------------------------------------------------------ running a task's steps

    async def _run(self, active: _Active[T], step: Step[T], prefix: str = "") -> Reply:
        if isinstance(step, Ask):
            self._active = active
            active.task.asked = step.text
            return self._ask(step, prefix)
        if isinstance(step, Done):
            return await active.then(step.value, join(prefix, step.said))
        assert isinstance(step, Closed)
        self._callback = _Callback(step.category, step.end_if_declined)
        collect = CollectCallback(step.text)
        return await self._run(_Active(collect, self._on_callback_answer), Ask(step.text), prefix)

    def _ask(self, step: Ask, prefix: str = "") -> Reply:
        text = step.text
        if step.stalled:
            self._stall = True
            if not text.startswith("Sorry"):  # a re-ask that does not apologise yet
                text = templates.DIDNT_CATCH.format(question=text)
        return self._say(join(prefix, text))

    # ------------------------------------------------------------------ per intent

    async def _begin(self, task: Task, slots: Slots) -> Reply:
        self._task = task
        self._prefs = Preferences()
        self._prefs.merge(slots)
        self._find, self._target, self._chosen = None, None, None
        if self.session.patient is None:
            verify = VerifyIdentity()
            return await self._run(_Active(verify, self._verified), await verify.start(self.call))
        return await self._start_task()

    async def _verify_first(self, answer: Understood) -> Reply:
        if verification_spent(self.call):
            return await self._run(_Active(VerifyIdentity(), self._verified), closed())
        verify = VerifyIdentity()
        return await self._run(_Active(verify, self._verified), await verify.handle(answer, self.call))

    async def _verified(self, patient: PatientRef, said: str) -> Reply:
        self.session.patient = patient
        if self._task is None:
            self._go_idle(State.TASK)
            return self._say(join(said, templates.ASK_TASK))
        return await self._start_task(said)

    async def _start_task(self, prefix: str = "") -> Reply:
        if self._task in (Task.BOOK, Task.AVAILABILITY):
            find = self._find = FindSlot(self._prefs)
            return await self._run(_Active(find, self._slot_chosen), await find.start(self.call), prefix)
        await self.call.clinic()
        found = await self.scheduling.upcoming_appointments(self.call.patient(), now=self.now())
        appointments = [self.call.named(a) for a in found]
        if self._task is Task.LIST:
            self._go_idle(State.ANYTHING_ELSE)
            return self._say(join(prefix, self._listing(appointments), templates.ANYTHING_ELSE))
        if not appointments:
            self._go_idle(State.ANYTHING_ELSE)
            return self._say(join(prefix, templates.NO_APPOINTMENTS, templates.ANYTHING_ELSE))
        if len(appointments) == 1:
            return await self._with_target(appointments[0], prefix)
        choose = ChooseAppointment(appointments)
        return await self._run(
            _Active(choose, self._appointment_chosen), await choose.start(self.call), prefix
        )

    async def _appointment_chosen(self, appointment: AppointmentInfo, said: str) -> Reply:
        if self._answer is not None:  # "the one with Dr. Okafor, in the afternoon": the afternoon stands
            self._prefs.merge(self._answer.slots.model_copy(update={"date_from": None, "date_to": None}))
        return await self._with_target(appointment, said)

    async def _with_target(self, appointment: AppointmentInfo, prefix: str = "") -> Reply:
        self._target = appointment
        spoken = speech.appointment(appointment, self.zone, today=self.call.today())
        if self._task is Task.CANCEL:
            confirm = Confirm(templates.CONFIRM_CANCEL.format(appointment=spoken))
            return await self._run(
                _Active(confirm, self._cancel_confirmed), await confirm.start(self.call), prefix
            )
        find = self._find = FindSlot(
            self._prefs, target=appointment, opening=templates.RESCHEDULE_WHEN.format(appointment=spoken)
        )
        return await self._run(_Active(find, self._slot_chosen), await find.start(self.call), prefix)

    async def _slot_chosen(self, offer: SlotOffer, said: str) -> Reply:
        self._chosen = offer
        today = self.call.today()
        option = speech.offer(offer, self.zone, today=today)
        visit = self._find.visit(self.call) if self._find is not None else None
        if self._task is Task.RESCHEDULE and self._target is not None:
            current = speech.appointment(self._target, self.zone, today=today)
            question = templates.CONFIRM_RESCHEDULE.format(appointment=current, option=option)
        elif visit is None:
            question = templates.CONFIRM_BOOK.format(option=option)
        else:
            question = templates.CONFIRM_BOOK_VISIT.format(
                option=option, visit=speech.article(speech.visit(visit))
            )
        confirm = Confirm(question)
        return await self._run(_Active(confirm, self._slot_confirmed), await confirm.start(self.call), said)

    async def _slot_confirmed(self, yes: bool, said: str) -> Reply:
        if yes:
            return await self._commit()
        assert self._find is not None
        self._chosen = None
        return await self._run(_Active(self._find, self._slot_chosen), self._find.reopen(), said)

    async def _cancel_confirmed(self, yes: bool, said: str) -> Reply:
        if yes:
            return await self._commit()
        self._go_idle(State.ANYTHING_ELSE)
        return self._say(templates.NOT_CANCELLED)

    async def _commit(self) -> Reply:
        patient, today = self.call.patient(), self.call.today()
        find, target, chosen = self._find, self._target, self._chosen
        try:
            if self._task is Task.CANCEL:
                assert target is not None
                done = self.call.named(await self.scheduling.cancel(patient, target.appointment_id))
                self._go_idle(State.ANYTHING_ELSE)
                spoken = speech.appointment(done, self.zone, today=today)
                return self._say(templates.CANCELLED.format(appointment=spoken))
            assert chosen is not None and find is not None
            visit = find.visit(self.call)
            if self._task is Task.RESCHEDULE:
                assert target is not None
                done = self.call.named(
                    await self.scheduling.reschedule(
                        patient, target.appointment_id, chosen.slot_id, visit_type=visit
                    )
                )
                self._go_idle(State.ANYTHING_ELSE)
                spoken = _capital(speech.appointment(done, self.zone, today=today))
                return self._say(templates.RESCHEDULED.format(appointment=spoken))
            done = self.call.named(await self.scheduling.book(patient, chosen.slot_id, visit_type=visit))
        except SlotUnavailable:
            assert find is not None and chosen is not None
            self._chosen = None
            return await self._run(_Active(find, self._slot_chosen), await find.taken(chosen, self.call))
        except RescheduleFailed:
            assert target is not None
            self._go_idle(State.ANYTHING_ELSE)
            spoken = speech.appointment(target, self.zone, today=today)
            return self._say(templates.RESCHEDULE_FAILED.format(appointment=spoken))
        except NotThisPatientsAppointment:
            self._go_idle(State.ANYTHING_ELSE)
            return self._say(join(templates.NO_APPOINTMENTS, templates.ANYTHING_ELSE))
        self._go_idle(State.ANYTHING_ELSE)
        return self._say(
            templates.BOOKED.format(appointment=speech.appointment(done, self.zone, today=today))
        )

    # ------------------------------------------------------------------ hand-offs

    async def _guardrail(self, guard: Guardrail) -> Reply:
        if self.on_guardrail is not None:
            await self.on_guardrail(guard)
        if guard.kind in ("emergency", "crisis"):
            await self._escalate("emergency" if guard.kind == "emergency" else "crisis", urgent=True)
            text = templates.EMERGENCY if guard.kind == "emergency" else templates.CRISIS
            return self._end(text, "escalated")
        if guard.kind == "change_rules":
            self._stall = True
            return self._say(templates.RULES_REFUSAL.format(question=self._question()))
        category: Category = "medical_question" if guard.kind == "medical_advice" else "other_person_request"
        if self.state in (State.CALLBACK_OFFER, State.CALLBACK_NUMBER):
            self._callback = _Callback(category, False, None, State.TASK)
        else:
            self._callback = _Callback(category, False, self._active, self._idle)
        text = templates.NO_MEDICAL_ADVICE if guard.kind == "medical_advice" else templates.ONLY_YOUR_OWN
        return await self._run(_Active(CollectCallback(text), self._on_callback_answer), Ask(text))

    async def _on_callback_answer(self, answer: CallbackAnswer, said: str) -> Reply:
        callback = self._callback or _Callback("caller_request", end_if_declined=True)
        if answer.number:
            return await self._escalate_and_end(answer.number)
        if answer.accepted:
            return await self._accept_callback()
        if callback.end_if_declined or answer.goodbye:
            return self._end(templates.CALLBACK_DECLINED_END, "goodbye")
        self._active, self._idle, self._callback = callback.resume, callback.resume_state, None
        return self._say(templates.CALLBACK_DECLINED.format(question=self._question()))

    async def _accept_callback(self) -> Reply:
        if self._can_transfer():
            # A person now rather than a callback later; ``transfer_failed`` falls back to the callback.
            return self._end(templates.TRANSFERRING, "transferred", transfer=True)
        if self.session.caller_number:
            return await self._escalate_and_end(self.session.caller_number)
        collect = CollectCallback(templates.ASK_CALLBACK_NUMBER, asking_number=True)
        return await self._run(_Active(collect, self._on_callback_answer), collect.ask_number())

    async def _escalate_and_end(self, number: str) -> Reply:
        category = self._callback.category if self._callback is not None else "caller_request"
        # Urgent hand-offs (emergency, crisis) never wait for a callback offer; these are all routine.
        await self._escalate(category, urgent=False, number=number)
        return self._end(templates.CALLBACK_CONFIRMED, "escalated")

    def _system_trouble(self, error: FhirError) -> Reply:
        log.warning("scheduling operation failed (%s)", type(error).__name__)
        self._callback = _Callback("system_error", end_if_declined=True)
        return self._offer(templates.SYSTEM_TROUBLE)

    def _offer(self, text: str) -> Reply:
        """Ask the callback question ``text`` (the offer ``self._callback`` describes)."""
        collect = CollectCallback(text)
        self._active = _Active(collect, self._on_callback_answer)
        collect.asked = text
        return self._say(text)

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

    # ------------------------------------------------------------------ progress, and saying things

    def _within_progress_limit(self, reply: Reply) -> Reply:
        """No caller holds a line: ``MAX_STALLED_TURNS`` turns in a row without progress offer a
        callback, and a turn without progress at that offer ends the call; nor is any re-ask said a
        third time in a row (a caller's own "say that again" is answered, but counted)."""
        if reply.end is not None:
            return reply
        self.stalled = self.stalled + 1 if self._stall else 0
        third_time = (
            self._stall and not self._repeat_asked and len(self._said) >= 3 and len(set(self._said[-3:])) == 1
        )
        if self.stalled < MAX_STALLED_TURNS and not third_time:
            return reply
        if self.stalled > MAX_STALLED_TURNS or self.state in (State.CALLBACK_OFFER, State.CALLBACK_NUMBER):
            return self._end(templates.NO_PROGRESS_END, "goodbye")
        self._callback = _Callback("cannot_complete", end_if_declined=True)
        return self._offer(templates.TOO_MANY_MISUNDERSTANDINGS)

    def _question(self) -> str:
        """The question to ask again after an interruption."""
        if self._active is not None:
            return self._active.task.question() or self.last_reply
        return templates.ANYTHING_ELSE if self._idle is State.ANYTHING_ELSE else templates.ASK_TASK

    def _go_idle(self, state: State) -> None:
        self._active, self._idle = None, state

    def _say(self, text: str) -> Reply:
        if self.state is State.CALLBACK_OFFER and self._can_transfer():
            for callback_words, transfer_words in templates.TRANSFER_OFFERS.items():
                text = text.replace(callback_words, transfer_words)
        self.last_reply = text
        self._said = [*self._said[-2:], text]
        return Reply(text)

    def _end(self, text: str, reason: EndReason, *, transfer: bool = False) -> Reply:
        self._go_idle(State.ENDED)
        self.last_reply = text
        return Reply(text, end=reason, transfer=transfer)

    # ------------------------------------------------------------------ understanding, and listings

    async def _understand(self, utterance: str) -> Understood:
        directory = await self.call.clinic()
        offers = self._find.offers if self._find is not None else []
        context = UnderstandingContext(
            now=self.now(),
            expecting=expecting(self.state),
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
                starts=tuple(o.start for o in offers), practitioners=tuple(o.schedule_id for o in offers)
            ),
            screened=True,  # _turn screened this utterance before asking for its meaning
        )
        return await self.understanding.understand(utterance, context)

    def _listing(self, appointments: list[AppointmentInfo]) -> str:
        if not appointments:
            return templates.NO_APPOINTMENTS
        today = self.call.today()
        spoken = [speech.appointment(a, self.zone, today=today) for a in appointments[:MAX_OFFERED]]
        if len(spoken) == 1:
            text = templates.YOUR_APPOINTMENTS_ONE.format(first=spoken[0])
        else:
            text = templates.YOUR_APPOINTMENTS_MANY.format(
                count=len(appointments), listing=_capital(speech.joined(spoken))
            )
        more = len(appointments) - MAX_OFFERED
        if more <= 0:
            return text
        return join(text, templates.AND_ONE_MORE if more == 1 else templates.AND_MORE.format(more=more))


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
