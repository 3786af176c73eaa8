"""What "when are my appointments?" is answered with: up to three read out, and how many more."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from zoneinfo import ZoneInfo

from fhir_adapters import AppointmentInfo
from voice_agent.dialogue import speech, templates
from voice_agent.dialogue.context import MAX_OFFERED, join

__all__ = ["capital", "listing"]


def listing(appointments: Sequence[AppointmentInfo], zone: ZoneInfo, *, today: date) -> str:
    if not appointments:
        return templates.NO_APPOINTMENTS
    spoken = [speech.appointment(a, zone, today=today) for a in appointments[:MAX_OFFERED]]
    if len(spoken) == 1:
        text = templates.YOUR_APPOINTMENTS_ONE.format(first=spoken[0])
    else:
        text = templates.YOUR_APPOINTMENTS_MANY.format(
            count=len(appointments), listing=capital(speech.joined(spoken))
        )
    more = len(appointments) - MAX_OFFERED
    if more <= 0:
        return text
    return join(text, templates.AND_ONE_MORE if more == 1 else templates.AND_MORE.format(more=more))


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]
