"""What every task of one call shares: the session (and its verified patient), the clinic's directory,
the clock and the call's count of failed identity checks. No decisions here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from fhir_adapters import AppointmentInfo, ClinicDirectory, FhirError, PatientRef, VisitType
from voice_agent.dialogue import speech
from voice_agent.dialogue.ports import IdentityGate, Scheduling
from voice_agent.session import CallSession

__all__ = ["MAX_OFFERED", "CallContext", "clock_words", "join"]

#: Slots or appointments read out at once (and so the only ones "the second one" can pick).
MAX_OFFERED = 3


@dataclass
class CallContext:
    scheduling: Scheduling
    session: CallSession
    zone: ZoneInfo
    clock: Callable[[], datetime] | None = None
    gate: IdentityGate | None = None
    #: Failed identity checks over the whole call: never reset, whatever the caller does in between.
    failed_attempts: int = 0
    directory: ClinicDirectory | None = field(default=None, repr=False)

    def now(self) -> datetime:
        return self.clock() if self.clock else datetime.now(self.zone)

    def today(self) -> date:
        return self.now().date()

    async def clinic(self) -> ClinicDirectory:
        """The public directory (practitioners, visit types), read once per call; empty if FHIR is down."""
        if self.directory is None:
            try:
                self.directory = await self.scheduling.directory()
            except FhirError:
                return ClinicDirectory(())
        return self.directory

    def patient(self) -> PatientRef:
        """The call's verified patient: the only patient any operation may be about."""
        if self.session.patient is None:
            raise RuntimeError("no verified patient bound to this call")
        return self.session.patient

    def visit_type(self, code: str | None) -> VisitType | None:
        if code is None or self.directory is None:
            return None
        return next((v for v in self.directory.visit_types if v.code == code), None)

    def named(self, info: AppointmentInfo) -> AppointmentInfo:
        """``info`` with its visit type's display from the clinic's directory when the Appointment
        carried only a code (so the caller hears "annual physical", not "annual-physical")."""
        visit = info.visit_type
        if visit is None or visit.display != visit.code or self.directory is None:
            return info
        known = next((v for v in self.directory.visit_types if v.code == visit.code), None)
        return replace(info, visit_type=known) if known is not None else info

    def at_midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(0, 0), tzinfo=self.zone)


def join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


def clock_words(moment: time) -> str:
    return speech.clock(datetime.combine(date(2000, 1, 1), moment))
