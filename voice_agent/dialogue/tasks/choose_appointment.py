"""``ChooseAppointment -> AppointmentInfo``: which of the caller's own appointments, chosen only among
those read out (by position, day, time or practitioner), never by an id the caller or a model gave."""

from __future__ import annotations

from fhir_adapters import AppointmentInfo
from voice_agent.dialogue import speech, templates
from voice_agent.dialogue.context import MAX_OFFERED, CallContext
from voice_agent.dialogue.reply import State
from voice_agent.dialogue.tasks.base import Ask, DialogueTask, Done, Step
from voice_agent.dialogue.understanding import Understood

__all__ = ["ChooseAppointment"]


class ChooseAppointment(DialogueTask[AppointmentInfo]):
    def __init__(self, appointments: list[AppointmentInfo], *, lead: str = "") -> None:
        self.state = State.CHOOSE_APPOINTMENT
        self._shown = appointments[:MAX_OFFERED]
        self._lead = lead

    async def start(self, call: CallContext) -> Step[AppointmentInfo]:
        return Ask(f"{self._lead} {self._which(call)}".strip())

    async def handle(self, answer: Understood, call: CallContext) -> Step[AppointmentInfo]:
        choice = self._pick(answer, call)
        if choice is None:
            return Ask(self._which(call), stalled=True)
        return Done(choice)

    def question(self) -> str:
        return self.asked

    def _which(self, call: CallContext) -> str:
        today = call.today()
        spoken = [speech.appointment(a, call.zone, today=today) for a in self._shown]
        return templates.WHICH_APPOINTMENT.format(options=speech.choices(spoken))

    def _pick(self, answer: Understood, call: CallContext) -> AppointmentInfo | None:
        slots = answer.slots
        if slots.option is not None and slots.option <= len(self._shown):
            return self._shown[slots.option - 1]
        matches = self._shown
        if slots.date_from is not None:
            matches = [
                a for a in matches if a.start and a.start.astimezone(call.zone).date() == slots.date_from
            ]
        if slots.practitioner is not None:
            schedule = call.directory.schedule(slots.practitioner) if call.directory else None
            matches = [a for a in matches if schedule and a.practitioner == schedule.practitioner]
        if slots.time_not_before is not None:
            matches = [
                a
                for a in matches
                if a.start and a.start.astimezone(call.zone).time() >= slots.time_not_before
            ]
        narrowed = matches is not self._shown
        return matches[0] if narrowed and len(matches) == 1 else None
