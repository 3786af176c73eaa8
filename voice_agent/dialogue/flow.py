"""What the conductor and its parts share: the intents that start a task, the task asking now, a pending
callback offer, and ``ConductorParts``, the state and helpers that the per-intent steps
(``intents.py``) and the detours (``detours.py``) read, declared once and defined by ``Conversation``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Generic, TypeVar
from zoneinfo import ZoneInfo

from fhir_adapters import AppointmentInfo, SlotOffer
from voice_agent.dialogue.context import CallContext
from voice_agent.dialogue.ports import Category, EscalationPort, GuardrailHook, Scheduling
from voice_agent.dialogue.reply import Reply, State
from voice_agent.dialogue.tasks.base import DialogueTask, Step
from voice_agent.dialogue.tasks.find_slot import FindSlot, Preferences
from voice_agent.dialogue.understanding import Intent, Understood
from voice_agent.session import CallSession, EndReason

__all__ = ["TASK_OF_INTENT", "Active", "CallbackOffer", "ConductorParts", "Task"]

T = TypeVar("T")


class Task(StrEnum):
    BOOK = "book"
    CANCEL = "cancel"
    RESCHEDULE = "reschedule"
    LIST = "list"
    AVAILABILITY = "availability"


TASK_OF_INTENT = {
    Intent.BOOK: Task.BOOK,
    Intent.CANCEL: Task.CANCEL,
    Intent.RESCHEDULE: Task.RESCHEDULE,
    Intent.LIST_APPOINTMENTS: Task.LIST,
    Intent.ASK_AVAILABILITY: Task.AVAILABILITY,
}


@dataclass
class Active(Generic[T]):
    """The task asking the current question, and what the conductor does with its result."""

    task: DialogueTask[T]
    then: Callable[[T, str], Awaitable[Reply]]


@dataclass
class CallbackOffer:
    category: Category
    end_if_declined: bool
    #: Where a declined offer goes back to: the task that was interrupted, or an idle question.
    resume: Active[Any] | None = None
    resume_state: State = State.ANYTHING_ELSE


class ConductorParts(ABC):
    """The base of the conductor's mixins: what they may read and call of ``Conversation``."""

    scheduling: Scheduling
    session: CallSession
    zone: ZoneInfo
    call: CallContext
    escalations: EscalationPort
    live_transfer: Callable[[], bool] | None
    on_guardrail: GuardrailHook | None
    _task: Task | None
    _active: Active[Any] | None
    _idle: State
    _callback: CallbackOffer | None
    _prefs: Preferences
    _find: FindSlot | None
    _target: AppointmentInfo | None
    _chosen: SlotOffer | None
    _answer: Understood | None
    _stall: bool

    @property
    @abstractmethod
    def state(self) -> State: ...

    @abstractmethod
    async def _run(self, active: Active[T], step: Step[T], prefix: str = "") -> Reply: ...

    @abstractmethod
    def _say(self, text: str) -> Reply: ...

    @abstractmethod
    def _end(self, text: str, reason: EndReason, *, transfer: bool = False) -> Reply: ...

    @abstractmethod
    def _go_idle(self, state: State) -> None: ...

    @abstractmethod
    def _question(self) -> str: ...
