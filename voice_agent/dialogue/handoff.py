"""The policy's hand-off port onto the encrypted escalation store."""

from __future__ import annotations

from fhir_adapters import PatientRef
from voice_agent.audit.alerts import BreachDetector
from voice_agent.dialogue.ports import Category
from voice_agent.escalations import AsyncEscalationStore, EscalationCategory, Urgency
from voice_agent.phone_numbers import to_e164
from voice_agent.session import CallSession


class StoreHandoff:
    """Creates the escalation staff will see: category, urgency, patient reference, callback number.

    An urgent one is a breach-detection signal per origin (the attested number, else the browser's
    source), and one from an origin whose earlier urgent escalation is still open is counted on that
    one instead (the caller still heard the 911 instruction: the policy says it before it hands off)."""

    def __init__(self, store: AsyncEscalationStore, detector: BreachDetector) -> None:
        self._store = store
        self._detector = detector

    async def escalate(
        self,
        *,
        category: Category,
        urgent: bool,
        patient: PatientRef | None,
        callback_number: str | None,
        session: CallSession,
    ) -> None:
        origin = session.caller_number or session.source
        if urgent and origin is not None:
            await self._detector.signal("urgent-escalation", origin)
            if await self._store.merge_urgent(origin, EscalationCategory(category), session.id):
                return
        await self._store.create(
            category=EscalationCategory(category),
            session_id=session.id,
            urgency=Urgency.URGENT if urgent else None,
            patient_id=patient.id if patient is not None else None,
            callback_number=to_e164(callback_number),
            origin=origin if urgent else None,
        )
