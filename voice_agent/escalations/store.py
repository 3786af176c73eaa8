"""Escalations in SQL, in the audit trail's database, each change committed with its audit event.

Why the audit database: an escalation row and the audit event that records its creation, viewing or
change are written in ONE transaction that also holds the audit head lock. A failed audit write therefore
leaves no escalation (and no change), and a failed escalation write leaves no audit event claiming it
happened. Two databases could only order the writes, never make them atomic.

At rest the PHI (patient id, callback number) is one AES-256-GCM blob under the audit keyring (same key
file, key ids and rotation); its associated data names the escalation and its call, so a blob copied to
another row does not decrypt. The plaintext is padded to a fixed size, so its length does not tell
whether the caller was verified. Category, urgency, status, times and staff ids stay plaintext: the queue
sorts and filters without decrypting, and reading it needs no view event. Those columns carry an HMAC
tag under the audit keys (``voice_agent.audit.row_integrity``), checked at every read: an emergency
marked resolved in SQL reads as open, urgent and tampered, raises a ``record-tampered`` alert, and is
never purged.

The SQL here is blocking and may wait on the audit head lock: from the event loop use
``AsyncEscalationStore`` (``voice_agent.escalations.aio``), which runs each call in a worker thread.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, TypeVar
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import (
    Column,
    Connection,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Row,
    String,
    Table,
    Uuid,
    case,
    delete,
    event,
    select,
    update,
)

from voice_agent.audit.crypto import DecryptionError, Keyring, Sealed
from voice_agent.audit.events import Actor, AuditAction, AuditEvent, AuditOutcome, AuditPurpose, FhirId
from voice_agent.audit.row_integrity import (
    KEY_ID_COLUMN,
    MAC_COLUMN,
    RowSeal,
    TamperAlarm,
    Verdict,
    add_mac_columns,
    mac_columns,
    seal_events,
    seal_existing,
)
from voice_agent.audit.store import create_tables, from_db_time, to_db_time
from voice_agent.audit.trail import AuditTrail

from .records import (
    ALWAYS_URGENT,
    CallbackNumber,
    Escalation,
    EscalationCategory,
    EscalationStatus,
    EscalationSummary,
    ResolutionOutcome,
    Urgency,
)

DEFAULT_RETENTION_DAYS = 30
#: Upper bound of one audited purge batch: the most ids one audit event may list.
PURGE_BATCH = 500
MAX_QUEUE = 1000
#: Every sealed blob's plaintext is padded to this many bytes (the largest is about 100).
_PHI_PAD = 128

metadata = MetaData()

escalations_table = Table(
    "escalations",
    metadata,
    Column("id", Uuid(), primary_key=True),
    #: Times are naive UTC, as in the audit tables; none of these columns is PHI.
    Column("created_at", DateTime(timezone=False), nullable=False),
    Column("category", String(32), nullable=False),
    Column("urgency", String(8), nullable=False),
    Column("session_id", Uuid(), nullable=False),
    Column("status", String(8), nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_at", DateTime(timezone=False)),
    Column("resolved_by", String(64)),
    Column("resolved_at", DateTime(timezone=False)),
    Column("outcome", String(32)),
    #: The sealed PHI: patient id and callback number.
    Column("key_id", String(32), nullable=False),
    Column("nonce", LargeBinary(12), nullable=False),
    Column("ciphertext", LargeBinary(), nullable=False),
    #: HMAC over the columns above the PHI (``ESCALATION_SEAL``); the PHI has its own GCM tag.
    *mac_columns(),
    Index("ix_escalations_queue", "status", "urgency", "created_at"),
    Index("ix_escalations_resolved_at", "resolved_at"),
)

#: Urgent escalations by where they came from (an HMAC of the calling number or browser source, no PHI):
#: a second urgent call from one origin while its first is still open is counted on that one, so a
#: flood of fake emergencies from one phone is one row and a real one from elsewhere is not buried.
urgent_origins_table = Table(
    "escalation_urgent_origins",
    metadata,
    Column("escalation_id", Uuid(), primary_key=True),
    Column("origin", String(64), nullable=False, index=True),
    Column("at", DateTime(timezone=False), nullable=False),
    Column("repeats", Integer, nullable=False),
)
#: How long an open urgent escalation absorbs further urgent calls from its origin.
URGENT_MERGE_WINDOW = timedelta(minutes=30)

_ACTIVE = (EscalationStatus.OPEN.value, EscalationStatus.CLAIMED.value)
#: What a row MAC covers: everything the queue shows and staff act on, id first. The sealed PHI is not
#: in it: its GCM tag already authenticates it and binds it to ``id`` and ``session_id``.
_COLUMNS = (
    "id",
    "created_at",
    "category",
    "urgency",
    "session_id",
    "status",
    "claimed_by",
    "claimed_at",
    "resolved_by",
    "resolved_at",
    "outcome",
)
ESCALATION_SEAL = RowSeal("escalation", _COLUMNS)
_T = TypeVar("_T")
Append = Callable[[AuditEvent], None]


# ---------------------------------------------------------------------- errors


class EscalationError(Exception):
    """Base class. Messages name fields, states and error classes, never values that could be PHI."""


class InvalidEscalation(EscalationError, ValueError):
    """The input does not fit the escalation record (free text, a malformed number or id...)."""


class EscalationNotFound(EscalationError, LookupError):
    """No escalation with that id (never created, or purged after resolution)."""


class EscalationConflict(EscalationError):
    """A refused status transition: resolving twice, claiming another's, resolving an unclaimed one."""

    def __init__(self, message: str, status: EscalationStatus, claimed_by: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.claimed_by = claimed_by


class EscalationUnreadable(EscalationError):
    """A stored escalation does not decrypt or validate (key missing from the keyring, or tampering)."""


class EscalationWriteError(EscalationError):
    """The database or the audit trail refused the write; nothing was changed (fail closed)."""


@dataclass(frozen=True)
class EscalationPurgeReport:
    cutoff: datetime
    deleted: int
    audit_events: int


class _Phi(BaseModel):
    """The sealed part of a row, validated again when it is opened."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    patient_id: FhirId | None = None
    callback_number: CallbackNumber | None = None


def _aad(escalation_id: UUID, session_id: UUID) -> bytes:
    return f"voice-agent-escalation/phi/v1|{escalation_id}|{session_id}".encode()


def _db_now(clock: Callable[[], datetime]) -> datetime:
    """The clock at the precision both backends store, so what ``create`` returns is what ``get`` reads."""
    return from_db_time(to_db_time(clock()))


def _fields_only(exc: ValidationError) -> str:
    """pydantic's messages quote the input (maybe a phone number): keep only where it failed."""
    return ", ".join(
        sorted({".".join(str(part) for part in error["loc"]) or "value" for error in exc.errors()})
    )


class EscalationStore:
    """Create, list, view, claim, resolve and purge escalations; every access to PHI is audited.

    Thread-safe (SQLAlchemy's pool; every write holds the audit head lock, which serialises writers across
    processes too). ``open`` is the usual entry point; the constructor shares an already open trail.
    """

    def __init__(
        self,
        trail: AuditTrail,
        keyring: Keyring,
        *,
        service_identity: str = "voice-agent",
        clock: Callable[[], datetime] | None = None,
        owns_trail: bool = False,
    ) -> None:
        self._trail = trail
        self._keyring = keyring
        self._service = Actor(kind="service", id=service_identity)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._owns_trail = owns_trail
        self._engine = trail.engine
        self._dialect = trail.dialect
        if self._dialect == "sqlite":
            _sqlite_secure_delete(self._engine)
        with self._transaction() as (conn, append):
            create_tables(conn, metadata)
            if add_mac_columns(conn, escalations_table):
                self._seal_existing(conn, append)
        self._alarm = TamperAlarm(trail, keyring, self._service, AuditPurpose.ESCALATION, clock=self._clock)

    @classmethod
    def open(
        cls,
        url: str,
        keyring: Keyring,
        *,
        service_identity: str = "voice-agent",
        clock: Callable[[], datetime] | None = None,
    ) -> EscalationStore:
        """Connect to the audit database at ``url`` (SQLite file or PostgreSQL), creating tables if needed."""
        trail = AuditTrail.open(url, keyring, clock=clock or (lambda: datetime.now(UTC)))
        try:
            return cls(trail, keyring, service_identity=service_identity, clock=clock, owns_trail=True)
        except BaseException:
            trail.close()
            raise

    def close(self) -> None:
        if self._owns_trail:
            self._trail.close()

    def __enter__(self) -> EscalationStore:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ agent side

    def create(
        self,
        *,
        category: EscalationCategory,
        session_id: UUID,
        urgency: Urgency | None = None,
        patient_id: str | None = None,
        callback_number: str | None = None,
        origin: str | None = None,
    ) -> Escalation:
        """Store a hand-off and its ``escalation.create`` event (service actor) in one transaction.

        Emergency and crisis are made urgent whatever ``urgency`` says: raising an error in the middle
        of an emergency would be worse than ignoring a wrong argument.
        """
        if category in ALWAYS_URGENT:
            urgency = Urgency.URGENT
        try:
            escalation = Escalation(
                id=uuid4(),
                created_at=_db_now(self._clock),
                category=category,
                urgency=urgency or Urgency.NORMAL,
                session_id=session_id,
                patient_id=patient_id,
                callback_number=callback_number,
            )
        except ValidationError as exc:
            raise InvalidEscalation(f"not a valid escalation (check: {_fields_only(exc)})") from None
        phi = _Phi(patient_id=escalation.patient_id, callback_number=escalation.callback_number)
        sealed = self._seal(escalation.id, escalation.session_id, phi)
        audit = self._event(self._service, AuditAction.ESCALATION_CREATE, "success", escalation)

        def work(conn: Connection, append: Append) -> Escalation:
            values = _row_values(escalation.summary())
            conn.execute(
                escalations_table.insert().values(
                    **values,
                    **ESCALATION_SEAL.tag(self._keyring, values),
                    key_id=sealed.key_id,
                    nonce=sealed.nonce,
                    ciphertext=sealed.ciphertext,
                )
            )
            if origin is not None and escalation.urgency is Urgency.URGENT:
                conn.execute(
                    urgent_origins_table.insert().values(
                        escalation_id=escalation.id,
                        origin=self._origin(origin),
                        at=_db_value(escalation.created_at),
                        repeats=0,
                    )
                )
            append(audit)
            return escalation

        return self._write(work)

    def merge_urgent(
        self, origin: str, category: EscalationCategory, session_id: UUID
    ) -> EscalationSummary | None:
        """If an urgent escalation of this category from ``origin`` (a calling number or source) is still
        open or claimed and was raised within ``URGENT_MERGE_WINDOW``, count this call on it (audited as
        ``escalation.merge`` with this call's session id) and return it; otherwise None: create one. (A
        crisis is never counted on an emergency: staff must see each kind.)"""
        since = _db_value(self._clock() - URGENT_MERGE_WINDOW)
        t, o = escalations_table, urgent_origins_table
        failed: list[tuple[Row[Any], Verdict]] = []

        def work(conn: Connection, append: Append) -> EscalationSummary | None:
            conn.execute(o.delete().where(o.c.at < since))
            row = conn.execute(
                select(*_checked_columns())
                .join(o, o.c.escalation_id == t.c.id)
                .where(
                    o.c.origin == self._origin(origin),
                    o.c.at >= since,
                    t.c.status.in_(_ACTIVE),
                    t.c.category == category.value,
                )
                .order_by(o.c.at.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            summary, verdict = self._present(row)
            if summary.tampered:  # never count a call on a row nobody can trust: queue it afresh
                failed.append((row, verdict))
                return None
            conn.execute(o.update().where(o.c.escalation_id == summary.id).values(repeats=o.c.repeats + 1))
            append(
                self._event(
                    self._service,
                    AuditAction.ESCALATION_MERGE,
                    "success",
                    escalation_id=summary.id,
                    session_id=session_id,  # the new call: its own events link here
                )
            )
            return summary

        try:
            return self._write(work)
        finally:
            self._raise_alarms(failed)

    def repeats(self) -> dict[UUID, int]:
        """Further urgent calls counted on each escalation (only those that have any)."""
        o = urgent_origins_table
        with self._engine.connect() as conn:
            rows = conn.execute(select(o.c.escalation_id, o.c.repeats).where(o.c.repeats > 0)).all()
        return {row.escalation_id: row.repeats for row in rows}

    def _origin(self, origin: str) -> str:
        key = hmac.new(
            self._keyring.keys[self._keyring.active_id], b"escalation-origins v1", "sha256"
        ).digest()
        return hmac.new(key, origin.encode(), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------------ staff side

    def queue(self, limit: int = 100) -> list[EscalationSummary]:
        """Open and claimed first, urgent first, then oldest; then resolved ones awaiting purge.

        Reads plaintext columns only, so listing is not a PHI access and writes no audit event. Every
        row is read and checked before the limit applies: a row forged to "resolved" must not sink below
        it. A row that fails its tag is listed as open and urgent with ``tampered`` set (and alarmed).
        """
        if not 1 <= limit <= MAX_QUEUE:
            raise ValueError(f"limit must be between 1 and {MAX_QUEUE}")
        t = escalations_table
        query = select(*_checked_columns()).order_by(
            case((t.c.status.in_(_ACTIVE), 0), else_=1),
            case((t.c.urgency == Urgency.URGENT.value, 0), else_=1),
            t.c.created_at,
            t.c.id,
        )
        with self._engine.connect() as conn, conn.begin():
            rows = conn.execute(query).all()
        summaries, failed = [], []
        for row in rows:
            summary, verdict = self._present(row)
            summaries.append(summary)
            if summary.tampered:
                failed.append((row, verdict))
        self._raise_alarms(failed)
        if failed:  # the SQL order used the stored values: sort again by what is shown
            summaries.sort(key=_queue_order)
        return summaries[:limit]

    def get(self, escalation_id: UUID, staff_user: str) -> Escalation:
        """Decrypt one escalation for a staff member; the ``escalation.view`` event commits first.

        Failed views (unknown id, undecryptable row) are audited too, then raised. A row that fails its
        tag is shown as the queue shows it (open, urgent, ``tampered``) with its PHI, which its own GCM
        tag vouches for: the front desk can still call back.
        """
        actor = self._staff(staff_user)
        failed: list[tuple[Row[Any], Verdict]] = []

        def work(conn: Connection, append: Append) -> Escalation | EscalationError:
            row = self._row(conn, escalation_id)
            if row is None:
                append(
                    self._event(actor, AuditAction.ESCALATION_VIEW, "not-found", escalation_id=escalation_id)
                )
                return EscalationNotFound("no such escalation")
            summary, verdict = self._present(row)
            if summary.tampered:
                failed.append((row, verdict))
            try:
                escalation = self._open(row, summary)
            except EscalationUnreadable as exc:
                append(
                    self._event(
                        actor,
                        AuditAction.ESCALATION_VIEW,
                        "failure",
                        escalation_id=escalation_id,
                        session_id=row.session_id,
                        error=type(exc.__cause__ or exc).__name__,
                    )
                )
                return exc
            append(self._event(actor, AuditAction.ESCALATION_VIEW, "success", escalation))
            return escalation

        try:
            return self._write(work)
        finally:
            self._raise_alarms(failed)

    def claim(self, escalation_id: UUID, staff_user: str) -> EscalationSummary:
        """Take ownership of an open escalation. Claiming one's own claim again is a no-op success;
        another's claim, or a resolved escalation, is refused (and the refusal audited). A row that fails
        its tag reads as open: claiming it writes the values shown, under a fresh tag."""
        actor = self._staff(staff_user)
        failed: list[tuple[Row[Any], Verdict]] = []

        def work(conn: Connection, append: Append) -> EscalationSummary | EscalationError:
            current = self._summary_or_none(conn, escalation_id, failed)
            refusal = _refuse_claim(current, actor.id)
            if refusal is None and current is not None and current.status is EscalationStatus.OPEN:
                now = _db_now(self._clock)
                current = self._transition(
                    conn,
                    current,
                    EscalationStatus.OPEN,
                    status=EscalationStatus.CLAIMED,
                    claimed_by=actor.id,
                    claimed_at=now,
                )
            return self._audit_update(
                append, actor, AuditAction.ESCALATION_CLAIM, escalation_id, current, refusal
            )

        try:
            return self._write(work)
        finally:
            self._raise_alarms(failed)

    def resolve(self, escalation_id: UUID, staff_user: str, outcome: ResolutionOutcome) -> EscalationSummary:
        """Close an escalation one holds the claim on, with an outcome code. Resolving twice, resolving an
        unclaimed escalation or another's claim is refused (and the refusal audited)."""
        actor = self._staff(staff_user)
        try:
            outcome = ResolutionOutcome(outcome)
        except ValueError:
            raise InvalidEscalation("outcome is not a resolution outcome code") from None
        failed: list[tuple[Row[Any], Verdict]] = []

        def work(conn: Connection, append: Append) -> EscalationSummary | EscalationError:
            current = self._summary_or_none(conn, escalation_id, failed)
            refusal = _refuse_resolve(current, actor.id)
            if refusal is None and current is not None:
                current = self._transition(
                    conn,
                    current,
                    EscalationStatus.CLAIMED,
                    status=EscalationStatus.RESOLVED,
                    resolved_by=actor.id,
                    resolved_at=_db_now(self._clock),
                    outcome=outcome,
                )
            return self._audit_update(
                append, actor, AuditAction.ESCALATION_RESOLVE, escalation_id, current, refusal
            )

        try:
            return self._write(work)
        finally:
            self._raise_alarms(failed)

    # ------------------------------------------------------------------ retention

    def purge_resolved(
        self, now: datetime, retention_days: int = DEFAULT_RETENTION_DAYS
    ) -> EscalationPurgeReport:
        """Delete escalations resolved before ``now - retention_days``; open and claimed ones are kept.

        Each batch of up to ``PURGE_BATCH`` rows is deleted in the same transaction as its
        ``escalation.delete`` event (count, ids, cutoff). A run that deletes nothing is audited too, so
        the trail shows retention being enforced. A row whose tag fails is not deleted (its "resolved"
        may be forged): it stays, shown as needing attention, and is alarmed.
        """
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        cutoff = now - timedelta(days=retention_days)
        t = escalations_table
        failed: list[tuple[Row[Any], Verdict]] = []

        def work(conn: Connection, append: Append) -> int:
            rows = conn.execute(
                select(*_checked_columns())
                .where(t.c.status == EscalationStatus.RESOLVED.value)
                .where(t.c.resolved_at < to_db_time(cutoff))
                .order_by(t.c.resolved_at, t.c.id)
                .limit(PURGE_BATCH)
            ).all()
            ids = []
            for row in rows:
                verdict = ESCALATION_SEAL.check(self._keyring, row._mapping)
                if verdict is Verdict.OK:
                    ids.append(row.id)
                else:
                    failed.append((row, verdict))
            if ids:
                conn.execute(delete(t).where(t.c.id.in_(ids)))
            append(
                AuditEvent(
                    time=self._clock(),
                    actor=self._service,
                    purpose=AuditPurpose.ESCALATION,
                    action=AuditAction.ESCALATION_DELETE,
                    outcome="success",
                    resource_ids=tuple(str(i) for i in ids),
                    event_count=len(ids),
                    range_end=cutoff,
                )
            )
            return len(ids)

        deleted = batches = 0
        try:
            while True:
                count = self._write(work)
                deleted += count
                batches += 1
                if count < PURGE_BATCH:  # the last batch, or one holding a row kept back
                    break
        finally:
            self._raise_alarms(failed)
        if deleted and self._dialect == "sqlite":
            self._sqlite_checkpoint()
        return EscalationPurgeReport(cutoff, deleted, batches)

    # ------------------------------------------------------------------ internals

    def _transaction(self) -> AbstractContextManager[tuple[Connection, Append]]:
        """One transaction holding the audit head lock; ``append`` chains events into it."""
        return self._trail.transaction()

    def _write(self, work: Callable[[Connection, Append], _T | EscalationError]) -> _T:
        """Run ``work`` in an audited transaction; raise a refusal only after its audit event committed."""
        try:
            with self._transaction() as (conn, append):
                result = work(conn, append)
        except EscalationError:
            raise
        except Exception as exc:
            raise EscalationWriteError(
                f"the escalation store or audit trail refused the write ({type(exc).__name__}); "
                "nothing was changed"
            ) from exc
        if isinstance(result, EscalationError):
            raise result
        return result

    def _row(self, conn: Connection, escalation_id: UUID) -> Row[Any] | None:
        return conn.execute(select(escalations_table).where(escalations_table.c.id == escalation_id)).first()

    def _summary_or_none(
        self, conn: Connection, escalation_id: UUID, failed: list[tuple[Row[Any], Verdict]]
    ) -> EscalationSummary | None:
        """The row as staff may trust it; one failing its tag goes on ``failed`` (alarm after commit)."""
        row = self._row(conn, escalation_id)
        if row is None:
            return None
        summary, verdict = self._present(row)
        if summary.tampered:
            failed.append((row, verdict))
        return summary

    def _present(self, row: Row[Any]) -> tuple[EscalationSummary, Verdict]:
        """The row's summary if its tag checks out; otherwise what the front desk must see instead: the
        same escalation (id, call, time, category if it is one) as open, urgent and ``tampered``."""
        verdict = ESCALATION_SEAL.check(self._keyring, row._mapping)
        if verdict is Verdict.OK:
            try:
                return EscalationSummary.model_validate(_summary_values(row)), verdict
            except ValidationError:  # tagged by this store yet invalid: a bug, not a forgery
                raise EscalationUnreadable("a stored escalation is not valid") from None
        try:
            category = EscalationCategory(row.category)
        except ValueError:
            category = EscalationCategory.SYSTEM_ERROR
        summary = EscalationSummary(
            id=row.id,
            created_at=from_db_time(row.created_at),
            category=category,
            urgency=Urgency.URGENT,
            session_id=row.session_id,
            tampered=True,
        )
        return summary, verdict

    def _raise_alarms(self, failed: list[tuple[Row[Any], Verdict]]) -> None:
        """After the transaction (SQLite has one writer): one alert per tampered row and window."""
        for row, verdict in failed:
            self._alarm("escalation", str(row.id), verdict)

    def _seal_existing(self, conn: Connection, append: Append) -> None:
        """The tag columns were just added: tag the rows already there, once, and audit it
        (``record.seal``) in the same transaction."""
        rows = seal_existing(conn, escalations_table, ESCALATION_SEAL, self._keyring)
        ids = [str(row.id) for row in rows]
        for record in seal_events(self._service, AuditPurpose.ESCALATION, ids, now=self._clock()):
            append(record)

    def _transition(
        self, conn: Connection, current: EscalationSummary, expected: EscalationStatus, **changes: Any
    ) -> EscalationSummary:
        """Write the changed escalation, every covered column and a fresh tag, only if the row is still in
        ``expected`` (belt and braces: the head lock already serialises writers). A tampered row's stored
        status is not what was shown, so that check is skipped for it; the values written are the shown
        ones plus the change."""
        updated = EscalationSummary.model_validate({**current.model_dump(), **changes, "tampered": False})
        values = _row_values(updated)
        t = escalations_table
        query = update(t).where(t.c.id == current.id)
        if not current.tampered:
            query = query.where(t.c.status == expected.value)
        result = conn.execute(query.values(**values, **ESCALATION_SEAL.tag(self._keyring, values)))
        if result.rowcount != 1:
            raise EscalationWriteError("the escalation changed during the update; nothing was changed")
        return updated

    def _audit_update(
        self,
        append: Append,
        actor: Actor,
        action: AuditAction,
        escalation_id: UUID,
        current: EscalationSummary | None,
        refusal: EscalationError | None,
    ) -> EscalationSummary | EscalationError:
        outcome: AuditOutcome
        result: EscalationSummary | EscalationError
        if current is None:
            outcome, result = "not-found", EscalationNotFound("no such escalation")
        elif refusal is not None:
            outcome, result = "conflict", refusal
        else:
            outcome, result = "success", current
        append(
            self._event(
                actor,
                action,
                outcome,
                current,
                escalation_id=escalation_id,
            )
        )
        return result

    def _event(
        self,
        actor: Actor,
        action: AuditAction,
        outcome: AuditOutcome,
        subject: EscalationSummary | Escalation | None = None,
        *,
        escalation_id: UUID | None = None,
        session_id: UUID | None = None,
        error: str | None = None,
    ) -> AuditEvent:
        """The audit event for one escalation: its id (as the resource id) and its call's session id.

        The escalation id links the create, views, updates and deletion; the session id links them to
        the call's own events (including the Patient reads that verified the caller). Neither the
        patient id nor the callback number is written to the trail.
        """
        target = subject.id if subject is not None else escalation_id
        return AuditEvent(
            time=self._clock(),
            actor=actor,
            purpose=AuditPurpose.ESCALATION,
            action=action,
            outcome=outcome,
            resource_ids=(str(target),) if target is not None else (),
            session_id=subject.session_id if subject is not None else session_id,
            error=error,
        )

    def _staff(self, staff_user: str) -> Actor:
        try:
            return Actor(kind="staff", id=staff_user)
        except ValidationError:
            raise InvalidEscalation("staff_user is not a valid staff account id") from None

    def _seal(self, escalation_id: UUID, session_id: UUID, phi: _Phi) -> Sealed:
        plaintext = phi.model_dump_json(exclude_none=True).encode()
        return self._keyring.seal(plaintext.ljust(_PHI_PAD, b" "), _aad(escalation_id, session_id))

    def _open(self, row: Row[Any], summary: EscalationSummary) -> Escalation:
        try:
            plaintext = self._keyring.open(
                Sealed(str(row.key_id), bytes(row.nonce), bytes(row.ciphertext)),
                _aad(row.id, row.session_id),
            )
            phi = _Phi.model_validate(json.loads(plaintext))
            return Escalation.model_validate({**summary.model_dump(), **phi.model_dump()})
        except DecryptionError as exc:
            raise EscalationUnreadable("the escalation does not decrypt (key not in the keyring?)") from exc
        except (ValidationError, ValueError) as exc:
            raise EscalationUnreadable("the escalation is not valid (altered outside the store?)") from exc

    def _sqlite_checkpoint(self) -> None:
        """Fold the WAL into the database file and truncate it, so deleted rows' pages (zeroed by
        ``secure_delete``) do not linger in the log. Best effort: a busy reader just delays it."""
        raw = self._engine.raw_connection()
        try:
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()


# ---------------------------------------------------------------------- transitions


def _refuse_claim(current: EscalationSummary | None, staff: str) -> EscalationError | None:
    if current is None or current.status is EscalationStatus.OPEN:
        return None
    if current.status is EscalationStatus.RESOLVED:
        return EscalationConflict("the escalation is already resolved", current.status, current.claimed_by)
    if current.claimed_by != staff:
        return EscalationConflict(
            "the escalation is claimed by another staff member", current.status, current.claimed_by
        )
    return None


def _refuse_resolve(current: EscalationSummary | None, staff: str) -> EscalationError | None:
    if current is None:
        return None
    if current.status is EscalationStatus.RESOLVED:
        return EscalationConflict("the escalation is already resolved", current.status, current.claimed_by)
    if current.status is EscalationStatus.OPEN:
        return EscalationConflict("claim the escalation before resolving it", current.status, None)
    if current.claimed_by != staff:
        return EscalationConflict(
            "the escalation is claimed by another staff member", current.status, current.claimed_by
        )
    return None


# ---------------------------------------------------------------------- rows


def _db_value(value: object) -> object:
    if isinstance(value, datetime):
        return to_db_time(value)
    if isinstance(value, (EscalationStatus, ResolutionOutcome, Urgency, EscalationCategory)):
        return value.value
    return value


def _row_values(summary: EscalationSummary) -> dict[str, object]:
    return {name: _db_value(getattr(summary, name)) for name in _COLUMNS}


def _checked_columns() -> list[Column[Any]]:
    """What a read needs to check a row's tag: the covered columns and the tag."""
    t = escalations_table
    return [*(t.c[name] for name in _COLUMNS), t.c[KEY_ID_COLUMN], t.c[MAC_COLUMN]]


def _queue_order(summary: EscalationSummary) -> tuple[int, int, datetime, UUID]:
    active = summary.status is not EscalationStatus.RESOLVED
    return (0 if active else 1, 0 if summary.urgency is Urgency.URGENT else 1, summary.created_at, summary.id)


def _summary_values(row: Row[Any]) -> dict[str, object]:
    values = {name: getattr(row, name) for name in _COLUMNS}
    for name, value in values.items():
        if isinstance(value, datetime):
            values[name] = from_db_time(value)
    return values


def _sqlite_secure_delete(engine: Any) -> None:
    """Deleted rows' bytes are overwritten with zeros instead of left in free pages: a purged escalation's
    ciphertext must not stay readable (the key lives on for years, for the audit trail). Existing pooled
    connections are dropped so every connection gets the pragma."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA secure_delete=ON")

    engine.dispose()


__all__ = [
    "DEFAULT_RETENTION_DAYS",
    "PURGE_BATCH",
    "EscalationConflict",
    "EscalationError",
    "EscalationNotFound",
    "EscalationPurgeReport",
    "EscalationStore",
    "EscalationUnreadable",
    "EscalationWriteError",
    "InvalidEscalation",
    "escalations_table",
]
