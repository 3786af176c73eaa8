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
from typing import Literal
from uuid import UUID

from pydantic import ValidationError

from fhir_adapters.gateway import AccessRecord

from .events import (
    ERROR_NAME_PATTERN,
    FHIR_RESOURCE_TYPES,
    MAX_RESOURCE_IDS,
    Actor,
    AlertKind,
    AuditAction,
    AuditEvent,
    AuditPurpose,
    CallMetrics,
    CallRefusal,
    EndReason,
    GuardrailKind,
    is_recordable_id,
)
from .trail import AuditTrail
from .workers import WorkerLedger

#: The call session the current task works for; set it when a call starts (tasks inherit it).
current_session_id: ContextVar[UUID | None] = ContextVar("voice_agent_audit_session_id", default=None)
#: The staff user a console request works for: FHIR reads made for them are audited with them as the
#: actor (the agent's certificate makes the request; the trail says who asked).
current_staff_user: ContextVar[str | None] = ContextVar("voice_agent_audit_staff_user", default=None)

_ERROR_NAME = re.compile(ERROR_NAME_PATTERN)


class AuditWriteError(Exception):
    """An audit event could not be written; the audited action must not be treated as done."""


class AuditRecorder:
    """Writes audit events for the agent's service identity; implements ``AccessRecorder``."""

    def __init__(
        self, trail: AuditTrail, service_identity: str, *, ledger: WorkerLedger | None = None
    ) -> None:
        self._trail = trail
        self._actor = Actor(kind="service", id=service_identity)
        #: With several workers on one trail: session events name the worker, and each open session has
        #: a row beside the trail, committed with its event, so a dead worker's calls can be closed.
        self._ledger = ledger

    @property
    def actor(self) -> Actor:
        return self._actor

    async def record(self, access: AccessRecord) -> None:
        """Audit one FHIR gateway call (success, failure, or refusal before the network)."""
        await self.write(self._access_event(access))

    async def session_started(self, session_id: UUID) -> None:
        await self._session_event(
            self._event(
                action=AuditAction.SESSION_START,
                purpose=AuditPurpose.CALL_SESSION,
                outcome="success",
                session_id=session_id,
                worker=self._ledger.worker_id if self._ledger else None,
            ),
            opened=True,
        )

    async def session_ended(
        self,
        session_id: UUID,
        reason: EndReason,
        duration_seconds: float,
        metrics: CallMetrics | None = None,
    ) -> None:
        """Record the end of a call, that its state was wiped (``phi_retained="none"``), and for a voice
        call its latency summary (numbers only)."""
        await self._session_event(
            self._event(
                action=AuditAction.SESSION_END,
                purpose=AuditPurpose.CALL_SESSION,
                outcome="success",
                session_id=session_id,
                worker=self._ledger.worker_id if self._ledger else None,
                end_reason=reason,
                duration_seconds=max(0.0, duration_seconds),
                phi_retained="none",
                call_metrics=metrics,
            ),
            opened=False,
        )

    async def _session_event(self, event: AuditEvent, *, opened: bool) -> None:
        ledger = self._ledger
        if ledger is None:
            await self.write(event)
            return
        session_id = event.session_id
        assert session_id is not None

        def write() -> None:
            with self._trail.transaction() as (conn, append):
                append(event)
                (ledger.opened if opened else ledger.closed)(conn, session_id)

        try:
            await asyncio.to_thread(write)
        except Exception as exc:
            raise AuditWriteError(f"the audit trail refused an event ({type(exc).__name__})") from exc

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

    async def call_refused(
        self, ingress: Literal["webrtc", "telephony", "sip"], refusal: CallRefusal
    ) -> None:
        """A call turned away at the door, and why in one word: a breach-detection signal."""
        await self.write(
            self._event(
                action=AuditAction.CALL_REFUSED,
                purpose=AuditPurpose.CALL_SESSION,
                outcome="denied",
                ingress=ingress,
                refusal=refusal,
            )
        )

    async def alert(self, kind: AlertKind) -> None:
        """A breach-detection alert, for the compliance officer's console (and the SIEM, when one is set)."""
        await self.write(
            self._event(
                action=AuditAction.SECURITY_ALERT,
                purpose=AuditPurpose.CALL_SESSION,
                outcome="denied",
                session_id=current_session_id.get(),
                alert=kind,
            )
        )

    async def transfer(self, *, succeeded: bool) -> None:
        """The call was (or could not be) put through to the front desk; never the address it went to."""
        await self.write(
            self._event(
                action=AuditAction.CALL_TRANSFER,
                purpose=AuditPurpose.ESCALATION,
                outcome="success" if succeeded else "failure",
                session_id=current_session_id.get(),
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
        staff = current_staff_user.get()
        actor = self._actor if staff is None else {"kind": "staff", "id": staff}
        try:
            return AuditEvent.model_validate({"time": datetime.now(UTC), "actor": actor, **fields})
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
