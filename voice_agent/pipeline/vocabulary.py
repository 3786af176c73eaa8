"""What Whisper is primed with: the clinic's practitioner names and visit types (not PHI: staff and
services), so "Dr. Okafor" is heard as such and not as "doctor oh car four"."""

from __future__ import annotations

import logging
from collections.abc import Iterable

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
    return primed_with(
        [schedule.practitioner for schedule in directory.schedules],
        [visit.display for visit in directory.visit_types],
    )


def primed_with(practitioners: Iterable[str], visits: Iterable[str]) -> Vocabulary:
    """Whisper's ``initial_prompt``: a sentence a caller might say, naming every practitioner and visit
    type. A plain function so that ``bench/stt_wer.py`` measures exactly the sentence calls use."""
    names, kinds = sorted(set(practitioners)), sorted(set(visits))
    if not names and not kinds:
        return Vocabulary()
    prompt = "Calling the clinic to book, cancel or reschedule"
    if kinds:
        prompt += " a " + ", ".join(kinds)
    if names:
        prompt += " with " + ", ".join(names)
    return Vocabulary(initial_prompt=prompt + ".")
