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
from voice_agent.audit import AuditRecorder, AuditTrail, open_trail
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


def audit_trail(settings: Settings) -> AuditTrail:
    """The configured trail; on the development sandbox a missing dev key is generated (0600)."""
    return open_trail(settings, create_dev_key=settings.uses_dev_sandbox)


@contextlib.asynccontextmanager
async def runtime(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[Runtime]:
    with audit_trail(settings) as trail:
        auditor = AuditRecorder(trail, settings.service_identity)
        async with wiring.gateway(settings, recorder=auditor, transport=transport) as fhir:
            sessions = SessionManager(auditor, idle_timeout=settings.session_idle_timeout_seconds)
            try:
                yield Runtime(settings, trail, auditor, fhir, wiring.scheduling(settings, fhir), sessions)
            finally:
                await sessions.shutdown()
