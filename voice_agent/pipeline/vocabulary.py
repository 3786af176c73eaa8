"""What Whisper is primed with: the clinic's practitioner names and visit types (not PHI: staff and
services), so "Dr. Okafor" is heard as such and not as "doctor oh car four"."""

from __future__ import annotations

import logging

from fhir_adapters import FhirError, Scheduling
from voice_agent.pipeline.stt import Vocabulary

log = logging.getLogger(__name__)


async def clinic_vocabulary(scheduling: Scheduling) -> Vocabulary:
    """From the Schedule directory (cached by ``Scheduling``); an empty vocabulary if FHIR is down."""
    try:
        directory = await scheduling.directory()
    except FhirError as error:
        log.warning("no clinic vocabulary for speech-to-text (%s)", type(error).__name__)
        return Vocabulary()
    names = sorted({s.practitioner for s in directory.schedules})
    visits = sorted({v.display for v in directory.visit_types})
    if not names and not visits:
        return Vocabulary()
    prompt = "Calling the clinic to book, cancel or reschedule"
    if visits:
        prompt += " a " + ", ".join(visits)
    if names:
        prompt += " with " + ", ".join(names)
    return Vocabulary(initial_prompt=prompt + ".")
