"""What the dialogue needs from the rest of the product, as Protocols: the scheduling operations, the
hand-off to staff and the cross-call identity counts. The tasks depend on these, not on the FHIR classes,
so each can be tested against an in-memory fake; the conversation suite runs them on the real sandbox."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import date, datetime
from typing import Literal, Protocol

from fhir_adapters import (
    AppointmentInfo,
    ClinicDirectory,
    GivenSpelling,
    PatientRef,
    SlotOffer,
    TimeOfDay,
    VisitType,
)
from voice_agent.dialogue.understanding.guardrails import Guardrail
from voice_agent.session import CallSession

__all__ = ["Category", "EscalationPort", "GuardrailHook", "IdentityGate", "Scheduling"]

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

GuardrailHook = Callable[[Guardrail], Awaitable[None]]


class Scheduling(Protocol):
    """The scheduling operations (``fhir_adapters.Scheduling`` over the gateway), each bound to the
    patient passed in: the dialogue passes only the call's verified patient."""

    async def directory(self, *, refresh: bool = False) -> ClinicDirectory: ...

    async def find_patient(self, *, given: str, family: str, birth_date: date) -> list[PatientRef]: ...

    async def find_patient_spelled(
        self, *, heard_given: str, family: str, birth_date: date, given: GivenSpelling | None = None
    ) -> list[PatientRef]: ...

    async def find_patient_keyed(
        self, *, heard_given: str, keys: str, birth_date: date, given: GivenSpelling | None = None
    ) -> list[PatientRef]: ...

    async def phone_on_record(self, patient: PatientRef, phone: str) -> bool: ...

    async def upcoming_appointments(
        self, patient: PatientRef, *, now: datetime | None = None
    ) -> list[AppointmentInfo]: ...

    async def bookable_until(
        self, *, schedule_ids: Sequence[str] | None = None, visit_type: VisitType | None = None
    ) -> datetime: ...

    async def find_free_slots(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        schedule_ids: Sequence[str] | None = None,
        visit_type: VisitType | None = None,
        time_of_day: TimeOfDay | None = None,
        limit: int = 3,
    ) -> list[SlotOffer]: ...

    async def book(
        self, patient: PatientRef, slot_id: str, *, visit_type: VisitType | None = None
    ) -> AppointmentInfo: ...

    async def cancel(self, patient: PatientRef, appointment_id: str) -> AppointmentInfo: ...

    async def reschedule(
        self,
        patient: PatientRef,
        appointment_id: str,
        new_slot_id: str,
        *,
        visit_type: VisitType | None = None,
    ) -> AppointmentInfo: ...


class EscalationPort(Protocol):
    """Where hand-offs to staff go (the encrypted escalation store). The dialogue passes the minimum."""

    async def escalate(
        self,
        *,
        category: Category,
        urgent: bool,
        patient: PatientRef | None,
        callback_number: str | None,
        session: CallSession,
    ) -> None: ...


class IdentityGate(Protocol):
    """Failed identity checks shared by every call and worker (``voice_agent.audit.attempts``)."""

    async def locked(self, *, name: str | None, number: str | None, source: str | None) -> bool: ...

    async def failed(self, *, name: str | None, number: str | None, source: str | None) -> None: ...
