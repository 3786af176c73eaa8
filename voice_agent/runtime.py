"""The process-wide objects of a running agent, built one way for every entry point.

Order matters: the audit trail opens first (no audit, no PHI access), then the gateway that reports to
it, then the operations and the session manager that use both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx

from fhir_adapters import FhirAuthenticationError, FhirGateway, Scheduling
from fhir_adapters.gateway import AccessRecord
from voice_agent import wiring
from voice_agent.audit import AuditRecorder, AuditTrail, Keyring, load_keyring
from voice_agent.audit.alerts import BreachDetector, Signals
from voice_agent.audit.attempts import AttemptGate, AttemptKind, AttemptLimit, VerificationAttempts
from voice_agent.audit.checkpoint import Checkpointer, CheckpointFile
from voice_agent.audit.siem import SyslogSink, WebhookSink, sinks_for
from voice_agent.audit.workers import WorkerLedger, keep_alive
from voice_agent.escalations import AsyncEscalationStore, EscalationStore
from voice_agent.session import SessionManager
from voice_agent.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    trail: AuditTrail
    auditor: AuditRecorder
    fhir: FhirGateway
    scheduling: Scheduling
    sessions: SessionManager
    escalations: AsyncEscalationStore
    #: The audit keys (the escalation store and the staff console seal with them too).
    keyring: Keyring
    #: This worker's heartbeat and its calls' rows beside the shared trail.
    worker: WorkerLedger
    #: Failed identity checks across calls and workers (the dialogue's ``IdentityGate``).
    gate: AttemptGate
    #: Breach-detection signals and alerts (console, audit, metrics, the SIEM when set).
    detector: BreachDetector
    #: The agent's "now" for everything about dates (not audit or session timing): ``wiring.clock``.
    clock: Callable[[], datetime]


def attempt_limits(settings: Settings) -> dict[AttemptKind, AttemptLimit]:
    return {
        "identity": AttemptLimit(
            settings.verification_identity_limit, timedelta(hours=settings.verification_identity_window_hours)
        ),
        "number": AttemptLimit(
            settings.verification_number_limit, timedelta(hours=settings.verification_number_window_hours)
        ),
        "source": AttemptLimit(
            settings.verification_source_limit, timedelta(hours=settings.verification_source_window_hours)
        ),
    }


def siem_sinks(settings: Settings) -> tuple[SyslogSink | WebhookSink, ...]:
    secret = settings.siem_webhook_secret
    return sinks_for(
        syslog=settings.siem_syslog_address,
        webhook=settings.siem_webhook_url,
        webhook_secret=secret.get_secret_value().encode() if secret else None,
        ca_file=settings.siem_ca_file,
        hostname=settings.worker_id,
    )


def breach_detector(
    settings: Settings,
    trail: AuditTrail,
    keyring: Keyring,
    auditor: AuditRecorder,
    sinks: tuple[SyslogSink | WebhookSink, ...] | None = None,
) -> BreachDetector:
    return BreachDetector(Signals(trail, keyring), auditor, siem_sinks(settings) if sinks is None else sinks)


class AlertingRecorder:
    """The gateway's recorder: every access audited, and a failed FHIR authentication (a certificate
    refused either way, or the agent's identity refused) also a breach-detection signal."""

    def __init__(self, auditor: AuditRecorder, detector: BreachDetector) -> None:
        self._auditor = auditor
        self._detector = detector

    async def record(self, access: AccessRecord) -> None:
        await self._auditor.record(access)
        if access.error == FhirAuthenticationError.__name__:
            await self._detector.signal("fhir-auth-failure")


@contextlib.asynccontextmanager
async def runtime(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None, checkpoints: bool = False
) -> AsyncIterator[Runtime]:
    """The agent's objects, torn down in reverse. ``checkpoints`` (``serve``): anchor the audit chain's
    tail outside the database (``audit.checkpoint``) now, every interval and last of all at shutdown,
    after the sessions' end events and the worker's retirement are written."""
    # On the development sandbox a missing dev key is generated (0600); elsewhere a missing key is fatal.
    keyring = load_keyring(settings, create_dev_key=settings.uses_dev_sandbox)
    with AuditTrail.open(settings.audit_url, keyring) as trail:
        worker = WorkerLedger(trail, settings.worker_id, heartbeat_seconds=settings.worker_heartbeat_seconds)
        await asyncio.to_thread(worker.create)
        await asyncio.to_thread(worker.register)
        auditor = AuditRecorder(trail, settings.service_identity, ledger=worker)
        attempts = VerificationAttempts(trail, keyring, attempt_limits(settings))
        await asyncio.to_thread(attempts.create)
        sinks = siem_sinks(settings)
        detector = breach_detector(settings, trail, keyring, auditor, sinks)
        checkpointer = Checkpointer(
            trail,
            keyring,
            CheckpointFile(settings.audit_checkpoint_path),
            worker=settings.worker_id,
            sinks=sinks,
        )
        await asyncio.to_thread(detector.signals.create)
        escalations = AsyncEscalationStore(
            EscalationStore(trail, keyring, service_identity=settings.service_identity)
        )
        recorder = AlertingRecorder(auditor, detector)
        async with wiring.gateway(settings, recorder=recorder, transport=transport) as fhir:
            sessions = SessionManager(auditor, idle_timeout=settings.session_idle_timeout_seconds)
            heartbeat = asyncio.get_running_loop().create_task(
                keep_alive(worker, auditor.actor), name="worker-heartbeat"
            )
            stop_anchoring = asyncio.Event()
            anchoring = (
                asyncio.get_running_loop().create_task(
                    checkpointer.run(settings.audit_checkpoint_interval_seconds, stop_anchoring),
                    name="audit-checkpoints",
                )
                if checkpoints
                else None
            )
            now = wiring.clock(settings)
            try:
                yield Runtime(
                    settings,
                    trail,
                    auditor,
                    fhir,
                    wiring.scheduling(settings, fhir, now=now),
                    sessions,
                    escalations,
                    keyring,
                    worker,
                    AttemptGate(attempts, detector),
                    detector,
                    now,
                )
            finally:
                await sessions.shutdown()
                heartbeat.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await heartbeat
                try:
                    await asyncio.to_thread(worker.retire)
                except Exception as error:  # the database is gone: survivors will see the beat lapse
                    log.warning("could not retire this worker's row (%s)", type(error).__name__)
                if anchoring is not None:  # the last checkpoint, after the sessions' ends and retirement
                    stop_anchoring.set()
                    await anchoring  # never raises: a failed checkpoint is logged and counted
