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

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fhir_adapters import (
    AppointmentInfo,
    ClinicDirectory,
    FhirError,
    SlotOffer,
)
from voice_agent.dialogue import templates
from voice_agent.dialogue.completeness import trails_off, whole_answer
from voice_agent.dialogue.context import CallContext, join
from voice_agent.dialogue.detours import Detours
from voice_agent.dialogue.flow import TASK_OF_INTENT, Active, CallbackOffer, Task
from voice_agent.dialogue.intents import IntentSteps
from voice_agent.dialogue.ports import EscalationPort, GuardrailHook, IdentityGate, Scheduling
from voice_agent.dialogue.progress import MAX_STALLED_TURNS, Progress, Verdict
from voice_agent.dialogue.reply import Reply, State
from voice_agent.dialogue.tasks.base import Ask, Closed, DialogueTask, Done, Step, expecting
from voice_agent.dialogue.tasks.collect_callback import CollectCallback
from voice_agent.dialogue.tasks.confirm import Confirm
from voice_agent.dialogue.tasks.find_slot import FindSlot, Preferences
from voice_agent.dialogue.tasks.verify_identity import VerifyIdentity
from voice_agent.dialogue.understanding import (
    DirectoryEntry,
    Intent,
    Offered,
    Understanding,
    UnderstandingContext,
    Understood,
    VisitTypeEntry,
)
from voice_agent.dialogue.understanding.guardrails import GUARDED_INTENTS, Guardrail, screen
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.session import CallSession, EndReason

__all__ = ["MAX_STALLED_TURNS", "Conversation", "Task"]

T = TypeVar("T")

#: Reads a turn heard so far for ``complete_answer``: microseconds, no I/O, whatever the call's backend.
_RULES = RulesUnderstanding()


@dataclass
class Conversation(IntentSteps, Detours):
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
    #: The progress limit's count of turns that got nowhere, and of what was said.
    progress: Progress = field(default_factory=Progress, init=False)
    call: CallContext = field(init=False)
    _task: Task | None = field(default=None, init=False)
    _active: Active[Any] | None = field(default=None, init=False)
    _idle: State = field(default=State.TASK, init=False)
    _callback: CallbackOffer | None = field(default=None, init=False)
    _prefs: Preferences = field(default_factory=Preferences, init=False)
    _find: FindSlot | None = field(default=None, init=False)
    _target: AppointmentInfo | None = field(default=None, init=False)
    _chosen: SlotOffer | None = field(default=None, init=False)
    _answer: Understood | None = field(default=None, init=False)
    _stall: bool = field(default=False, init=False)
    _repeat_asked: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.call = CallContext(self.scheduling, self.session, self.zone, self.clock, self.gate)

    # ------------------------------------------------------------------ what the channels see

    async def transfer_failed(self) -> Reply:
        """The front desk could not be reached: the hand-off becomes a callback (``detours.py``)."""
        return await self._transfer_failed()

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
        """Whether ``utterance`` is a whole answer to the current question: turn-taking may answer now
        (``completeness.py``; the task may know better, as a callback number's ten digits)."""
        if self.state is State.ENDED or self.awaits_more(utterance):
            return False
        if screen(utterance) is not None:  # an emergency, or a topic the agent refuses: answer now
            return True
        if trails_off(utterance):  # "May 17th, 1980, no wait": a correction is coming
            return False
        if self._active is not None and self._active.task.complete(utterance, self.call):
            return True
        answer = _RULES.parse(utterance, self._context(self.call.directory))
        return whole_answer(expecting(self.state), answer, utterance)

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
            self._callback = CallbackOffer("caller_request", False, self._active, self._idle)
            return await self._accept_callback()
        try:
            return await self._dispatch(answer)
        except FhirError as error:
            return self._system_trouble(error)

    async def _dispatch(self, answer: Understood) -> Reply:
        active = self._active
        wanted = TASK_OF_INTENT.get(answer.intent)
        if active is None:
            return await self._on_idle(answer, wanted)
        task = active.task
        find = self._find
        if self._another_time(task, wanted, answer):
            wanted = self._task  # "can we do Friday instead" while times are on the table: this booking
        if isinstance(task, VerifyIdentity):
            if wanted is not None:
                self._task = wanted  # what they want once verified; the identity check goes on
        elif not isinstance(task, CollectCallback) and wanted not in (None, self._task, Task.AVAILABILITY):
            assert wanted is not None
            return await self._begin(wanted, answer.slots)  # the caller changed their mind
        if (
            isinstance(task, Confirm)
            and self._chosen is not None
            and find is not None
            and (answer.slots.option is not None or find.prefs.would_change(answer.slots))
        ):
            # another day or time at the read-back ("no wait, Tuesday"): back to the times
            return await self._run(Active(find, self._slot_chosen), await find.revise(answer, self.call))
        return await self._run(active, await task.handle(answer, self.call))

    def _another_time(self, task: DialogueTask[Any], wanted: Task | None, answer: Understood) -> bool:
        """Whether a "reschedule" heard during a booking's times (or a "book" during a move's) only asks
        for another time for the appointment being arranged. A model may call "can we do Friday
        instead?" at a booking's read-back a reschedule; switching would move one of the caller's
        existing appointments instead. With no new day or time in it, it is a real change of task."""
        find = self._find
        return (
            find is not None
            and isinstance(task, (FindSlot, Confirm))
            and {wanted, self._task} == {Task.BOOK, Task.RESCHEDULE}
            and find.prefs.would_change(answer.slots)
        )

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

    async def _run(self, active: Active[T], step: Step[T], prefix: str = "") -> Reply:
        if isinstance(step, Ask):
            self._active = active
            active.task.asked = step.text
            return self._ask(step, prefix)
        if isinstance(step, Done):
            return await active.then(step.value, join(prefix, step.said))
        assert isinstance(step, Closed)
        self._callback = CallbackOffer(step.category, step.end_if_declined)
        collect = CollectCallback(step.text)
        return await self._run(Active(collect, self._on_callback_answer), Ask(step.text), prefix)

    def _ask(self, step: Ask, prefix: str = "") -> Reply:
        text = step.text
        if step.stalled:
            self._stall = True
            if not text.startswith("Sorry"):  # a re-ask that does not apologise yet
                text = templates.DIDNT_CATCH.format(question=text)
        return self._say(join(prefix, text))

    # ------------------------------------------------------------------ progress, and saying things

    def _within_progress_limit(self, reply: Reply) -> Reply:
        """No caller holds a line (``progress.py``): too many turns in a row without progress offer a
        callback, and a turn without progress at that offer ends the call; nor is any re-ask said a
        third time in a row (a caller's own "say that again" is answered, but counted)."""
        if reply.end is not None:
            return reply
        verdict = self.progress.after_turn(
            stalled=self._stall,
            repeat_asked=self._repeat_asked,
            at_callback_offer=self.state in (State.CALLBACK_OFFER, State.CALLBACK_NUMBER),
        )
        if verdict is Verdict.GO_ON:
            return reply
        if verdict is Verdict.END:
            return self._end(templates.NO_PROGRESS_END, "goodbye")
        self._callback = CallbackOffer("cannot_complete", end_if_declined=True)
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
        self.progress.said(text)
        return Reply(text)

    def _end(self, text: str, reason: EndReason, *, transfer: bool = False) -> Reply:
        self._go_idle(State.ENDED)
        self.last_reply = text
        return Reply(text, end=reason, transfer=transfer)

    # ------------------------------------------------------------------ understanding

    async def _understand(self, utterance: str) -> Understood:
        context = self._context(await self.call.clinic())
        return await self.understanding.understand(utterance, context)

    def _context(self, directory: ClinicDirectory | None) -> UnderstandingContext:
        offers = self._find.offers if self._find is not None else []
        schedules = directory.schedules if directory is not None else ()
        visit_types = directory.visit_types if directory is not None else ()
        return UnderstandingContext(
            now=self.now(),
            expecting=expecting(self.state),
            practitioners=tuple(
                DirectoryEntry(
                    s.schedule_id, s.practitioner, self.practitioner_aliases.get(s.schedule_id, ())
                )
                for s in schedules
            ),
            visit_types=tuple(
                VisitTypeEntry(v.code, v.display, self.visit_type_aliases.get(v.code, ()))
                for v in visit_types
            ),
            offered=Offered(
                starts=tuple(o.start for o in offers), practitioners=tuple(o.schedule_id for o in offers)
            ),
            screened=True,  # _turn screened this utterance before asking for its meaning
        )
