"""Hand-offs to front-desk staff: the minimum a staff member needs to call back, encrypted at rest.

An escalation holds a reason category, an urgency, the call's session id, and (sealed with AES-256-GCM
under the audit keyring) the verified patient's FHIR id and a callback number; never a transcript or a
note. It lives in the audit trail's database so that every create, view and change commits in one
transaction with its audit event, and it is deleted a short retention after it is resolved (``records``,
``store``; ``aio`` for the event loop and the console's "new urgent escalation" signal).
"""

from __future__ import annotations

from voice_agent.audit import load_keyring
from voice_agent.settings import Settings

from .aio import AsyncEscalationStore, UrgentSignal
from .records import (
    ALWAYS_URGENT,
    Escalation,
    EscalationCategory,
    EscalationStatus,
    EscalationSummary,
    ResolutionOutcome,
    Urgency,
)
from .store import (
    DEFAULT_RETENTION_DAYS,
    EscalationConflict,
    EscalationError,
    EscalationNotFound,
    EscalationPurgeReport,
    EscalationStore,
    EscalationUnreadable,
    EscalationWriteError,
    InvalidEscalation,
)


def open_escalations(settings: Settings, *, create_dev_key: bool = False) -> EscalationStore:
    """The configured store: the audit database (``settings.audit_url``) and the audit keys."""
    keyring = load_keyring(settings, create_dev_key=create_dev_key)
    return EscalationStore.open(settings.audit_url, keyring, service_identity=settings.service_identity)


__all__ = [
    "ALWAYS_URGENT",
    "DEFAULT_RETENTION_DAYS",
    "AsyncEscalationStore",
    "Escalation",
    "EscalationCategory",
    "EscalationConflict",
    "EscalationError",
    "EscalationNotFound",
    "EscalationPurgeReport",
    "EscalationStatus",
    "EscalationStore",
    "EscalationSummary",
    "EscalationUnreadable",
    "EscalationWriteError",
    "InvalidEscalation",
    "ResolutionOutcome",
    "Urgency",
    "UrgentSignal",
    "open_escalations",
]
