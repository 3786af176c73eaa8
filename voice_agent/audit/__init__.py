"""Append-only, tamper-evident, encrypted audit trail (HIPAA audit controls).

Events are typed and hold no free text (``events``); each is encrypted with AES-256-GCM under a key
kept outside the database (``crypto``) and chained by SHA-256 with an HMAC'd head (``store``,
``trail``). ``AuditRecorder`` plugs the trail into the FHIR gateway and call sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from voice_agent.settings import Settings

from .crypto import DecryptionError, Keyring, KeyringError, generate_key_file
from .events import (
    FHIR_RESOURCE_TYPES,
    STAFF_USER_PATTERN,
    Actor,
    AuditAction,
    AuditEvent,
    AuditOutcome,
    AuditPurpose,
    CallMetrics,
    EndReason,
    StaffChange,
    StaffRole,
    StaffUserId,
)
from .recorder import AuditRecorder, AuditWriteError, current_session_id, current_staff_user
from .trail import (
    AuditIntegrityError,
    AuditKeyRequired,
    AuditTrail,
    Problem,
    PurgeReport,
    VerifyReport,
)

log = logging.getLogger(__name__)


def load_keyring(settings: Settings, *, create_dev_key: bool = False) -> Keyring:
    """The audit keys from ``audit_keys`` or the key file; a missing dev key may be generated.

    Only the development default (``<dev_dir>/audit.key``, used with the local sandbox) is ever created
    here: a clinic's named key file that is missing means data could not be read back, so it fails.
    """
    if settings.audit_keys is not None and settings.audit_key_file is not None:
        raise KeyringError("set VOICE_AGENT_AUDIT_KEYS or VOICE_AGENT_AUDIT_KEY_FILE, not both")
    if settings.audit_keys is not None:
        return Keyring.from_string(settings.audit_keys.get_secret_value(), source="VOICE_AGENT_AUDIT_KEYS")
    path = settings.audit_key_path
    if path is None:
        raise KeyringError(
            "no audit key configured: set VOICE_AGENT_AUDIT_KEY_FILE (create it with "
            "`voice-agent audit keygen --key-file PATH`) or VOICE_AGENT_AUDIT_KEYS"
        )
    if create_dev_key and settings.audit_key_file is None and not path.exists():
        key_id = generate_key_file(path)
        log.warning("Created development audit key %s in %s (development sandbox only).", key_id, path)
    return Keyring.from_file(path)


def open_trail(
    settings: Settings,
    *,
    create_dev_key: bool = False,
    with_key: bool = True,
    clock: Callable[[], datetime] | None = None,
) -> AuditTrail:
    """The configured trail. ``with_key=False`` opens it for chain-only verification (no key needed)."""
    keyring = load_keyring(settings, create_dev_key=create_dev_key) if with_key else None
    return AuditTrail.open(settings.audit_url, keyring, clock=clock or (lambda: datetime.now(UTC)))


__all__ = [
    "FHIR_RESOURCE_TYPES",
    "STAFF_USER_PATTERN",
    "Actor",
    "AuditAction",
    "AuditEvent",
    "AuditIntegrityError",
    "AuditKeyRequired",
    "AuditOutcome",
    "AuditPurpose",
    "AuditRecorder",
    "AuditTrail",
    "AuditWriteError",
    "CallMetrics",
    "DecryptionError",
    "EndReason",
    "Keyring",
    "KeyringError",
    "Problem",
    "PurgeReport",
    "StaffChange",
    "StaffRole",
    "StaffUserId",
    "VerifyReport",
    "current_session_id",
    "current_staff_user",
    "generate_key_file",
    "load_keyring",
    "open_trail",
]
