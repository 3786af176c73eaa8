"""The process-wide objects of a running agent, built one way for every entry point.

Order matters: the audit trail opens first (no audit, no PHI access), then the gateway that reports to
it, then the operations and the session manager that use both.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from fhir_adapters import FhirGateway, Scheduling
from voice_agent import wiring
from voice_agent.audit import AuditRecorder, AuditTrail, load_keyring
from voice_agent.escalations import AsyncEscalationStore, EscalationStore
from voice_agent.session import SessionManager
from voice_agent.settings import Settings


@dataclass
class Runtime:
    settings: Settings
    trail: AuditTrail
    auditor: AuditRecorder
    fhir: FhirGateway
    scheduling: Scheduling
    sessions: SessionManager
    escalations: AsyncEscalationStore


@contextlib.asynccontextmanager
async def runtime(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Runtime]:
    # On the development sandbox a missing dev key is generated (0600); elsewhere a missing key is fatal.
    keyring = load_keyring(settings, create_dev_key=settings.uses_dev_sandbox)
    with AuditTrail.open(settings.audit_url, keyring) as trail:
        auditor = AuditRecorder(trail, settings.service_identity)
        escalations = AsyncEscalationStore(
            EscalationStore(trail, keyring, service_identity=settings.service_identity)
        )
        async with wiring.gateway(settings, recorder=auditor, transport=transport) as fhir:
            sessions = SessionManager(auditor, idle_timeout=settings.session_idle_timeout_seconds)
            try:
                yield Runtime(
                    settings, trail, auditor, fhir, wiring.scheduling(settings, fhir), sessions, escalations
                )
            finally:
                await sessions.shutdown()
