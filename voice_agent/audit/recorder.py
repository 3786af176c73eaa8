"""The bridge from async code to the trail: the FHIR gateway's ``AccessRecorder`` and session events.

Writes run in a worker thread (the trail's SQL is blocking and may wait on the head lock) and fail
closed: if an event cannot be written, the caller gets ``AuditWriteError`` and the action it was
about to report is treated as failed. Error messages never carry the event's values.
"""

from __future__ import annotations

import asyncio
import re
from contextvars import ContextVar
from datetime import UTC, datetime
from uuid import UUID

from pydantic import ValidationError

from fhir_adapters.gateway import AccessRecord

from .events import (
    ERROR_NAME_PATTERN,
    FHIR_RESOURCE_TYPES,
    MAX_RESOURCE_IDS,
    Actor,
    AuditAction,
    AuditEvent,
    AuditPurpose,
    EndReason,
    GuardrailKind,
    is_recordable_id,
)
from .trail import AuditTrail

#: The call session the current task works for; set it when a call starts (tasks inherit it).
current_session_id: ContextVar[UUID | None] = ContextVar("voice_agent_audit_session_id", default=None)

_ERROR_NAME = re.compile(ERROR_NAME_PATTERN)


class AuditWriteError(Exception):
    """An audit event could not be written; the audited action must not be treated as done."""


class AuditRecorder:
    """Writes audit events for the agent's service identity; implements ``AccessRecorder``."""

    def __init__(self, trail: AuditTrail, service_identity: str) -> None:
        self._trail = trail
        self._actor = Actor(kind="service", id=service_identity)

    async def record(self, access: AccessRecord) -> None:
        """Audit one FHIR gateway call (success, failure, or refusal before the network)."""
        await self.write(self._access_event(access))

    async def session_started(self, session_id: UUID) -> None:
        await self.write(
            self._event(
                action=AuditAction.SESSION_START,
                purpose=AuditPurpose.CALL_SESSION,
                outcome="success",
                session_id=session_id,
            )
        )

    async def session_ended(self, session_id: UUID, reason: EndReason, duration_seconds: float) -> None:
        """Record the end of a call and that its state was wiped (``phi_retained="none"``)."""
        await self.write(
            self._event(
                action=AuditAction.SESSION_END,
                purpose=AuditPurpose.CALL_SESSION,
                outcome="success",
                session_id=session_id,
                end_reason=reason,
                duration_seconds=max(0.0, duration_seconds),
                phi_retained="none",
            )
        )

    async def guardrail(self, kind: GuardrailKind) -> None:
        """A guardrail fired in this call (emergency words, a request for advice or for someone else's
        data, an attempt to change the agent's rules): which one, never the words."""
        await self.write(
            self._event(
                action=AuditAction.DIALOGUE_GUARDRAIL,
                purpose=AuditPurpose.CALL_SESSION,
                outcome="success" if kind in ("emergency", "crisis") else "denied",
                session_id=current_session_id.get(),
                guardrail=kind,
            )
        )

    async def write(self, event: AuditEvent) -> int:
        """Append off the event loop; any failure is re-raised as ``AuditWriteError`` (fail closed)."""
        try:
            return await asyncio.to_thread(self._trail.append, event)
        except Exception as exc:
            raise AuditWriteError(f"the audit trail refused an event ({type(exc).__name__})") from exc

    # ------------------------------------------------------------------ mapping

    def _event(self, **fields: object) -> AuditEvent:
        try:
            return AuditEvent.model_validate({"time": datetime.now(UTC), "actor": self._actor, **fields})
        except ValidationError:
            # pydantic's message quotes the offending input, which may be caller data: drop it.
            raise AuditWriteError("an action could not be expressed as an audit event") from None

    def _access_event(self, access: AccessRecord) -> AuditEvent:
        """Map a gateway ``AccessRecord``, withholding anything outside the id and type grammars (a
        refused request may carry caller input where an id belongs)."""
        ids = [value for value in access.resource_ids if is_recordable_id(value)]
        withheld = len(access.resource_ids) - min(len(ids), MAX_RESOURCE_IDS)
        status = access.status if access.status is not None and 100 <= access.status <= 599 else None
        error = access.error.lstrip("_") if access.error else None
        try:
            action = AuditAction(f"fhir.{access.interaction.value}")
            purpose = AuditPurpose(access.purpose.value)
        except ValueError:
            raise AuditWriteError("a gateway interaction or purpose has no audit equivalent") from None
        return self._event(
            action=action,
            purpose=purpose,
            outcome=access.outcome,
            resource_type=access.resource_type if access.resource_type in FHIR_RESOURCE_TYPES else None,
            resource_ids=tuple(ids[:MAX_RESOURCE_IDS]),
            withheld_ids=withheld or None,
            session_id=current_session_id.get(),
            http_status=status,
            error=error if error and _ERROR_NAME.fullmatch(error) else ("Exception" if error else None),
        )
