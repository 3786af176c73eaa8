"""The audit trail: append, verify, export and purge over the encrypted hash chain in ``store``.

Verification walks the whole chain in one snapshot and names every sequence number that was changed,
deleted, moved, inserted, cut off the end, or fails to decrypt. Without the key it can still check the
chain (an auditor may hold the database but not the key); with the key it also checks every GCM tag,
the head and anchor HMAC, and that the purge anchor matches the purge event that created it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Literal
from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import Connection, Engine

from .crypto import DecryptionError, Keyring, Sealed
from .events import Actor, AuditAction, AuditEvent, AuditPurpose
from .store import (
    GENESIS_HASH,
    AuditStore,
    HeadRecord,
    StoredRecord,
    canonical_time,
    chain_hash,
    from_db_time,
    record_aad,
    to_db_time,
)

ProblemKind = Literal[
    "missing-trail",
    "head",
    "anchor",
    "missing",
    "truncated",
    "inserted",
    "altered",
    "reordered",
    "relinked",
    "undecryptable",
    "invalid-event",
]

#: Verification keeps listing problems up to this many; a wholesale rewrite does not need a million lines.
MAX_PROBLEMS = 1000
#: Rows whose original position verify tries to work out (each costs a lookup or two).
_MAX_CLASSIFY = 100


class AuditIntegrityError(Exception):
    """The trail failed a check that must pass before it may be extended, purged or exported."""

    def __init__(self, message: str, report: VerifyReport | None = None) -> None:
        super().__init__(message)
        self.report = report


class AuditKeyRequired(Exception):
    """The trail was opened without its keys (chain-only verification); this operation needs them."""


@dataclass(frozen=True)
class Problem:
    """One finding. ``seq``..``through`` is the affected range (``seq`` None: the trail as a whole)."""

    kind: ProblemKind
    detail: str
    seq: int | None = None
    through: int | None = None

    @property
    def seqs(self) -> range:
        if self.seq is None:
            return range(0)
        return range(self.seq, (self.through if self.through is not None else self.seq) + 1)

    def __str__(self) -> str:
        if self.seq is None:
            where = "trail"
        elif self.through is None or self.through == self.seq:
            where = f"seq {self.seq}"
        else:
            where = f"seq {self.seq}-{self.through}"
        return f"{where}: {self.kind}: {self.detail}"


@dataclass
class SessionTally:
    """What the trail says of calls: how each ended, and which have no end yet. Session ids are random
    UUIDs; nothing here is about a caller."""

    started: int = 0
    ended: dict[str, int] = field(default_factory=dict)
    #: Closed by a surviving worker after theirs died (``end_reason="interrupted"``), with that worker.
    interrupted: dict[UUID, str | None] = field(default_factory=dict)
    #: Started, never ended: in progress, or interrupted and not yet closed (``WorkerLedger`` tells).
    unended: dict[UUID, str | None] = field(default_factory=dict)

    def add(self, event: AuditEvent) -> None:
        if event.session_id is None:
            return
        if event.action is AuditAction.SESSION_START:
            self.started += 1
            self.unended[event.session_id] = event.worker
        elif event.action is AuditAction.SESSION_END and event.end_reason is not None:
            self.ended[event.end_reason] = self.ended.get(event.end_reason, 0) + 1
            self.unended.pop(event.session_id, None)
            if event.end_reason == "interrupted":
                self.interrupted[event.session_id] = event.worker


@dataclass(frozen=True)
class VerifyReport:
    checked: int
    keyed: bool
    head_seq: int | None
    anchor_seq: int
    first_seq: int | None
    last_seq: int | None
    problems: tuple[Problem, ...]
    notes: tuple[str, ...] = ()
    #: Only with the keys (the events must be decrypted).
    sessions: SessionTally | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def problem_seqs(self) -> frozenset[int]:
        """Every sequence number some problem names (ranges expanded)."""
        return frozenset(seq for problem in self.problems for seq in problem.seqs)

    def lines(self) -> list[str]:
        span = "" if self.first_seq is None else f", seq {self.first_seq}-{self.last_seq}"
        checks = "hash chain, GCM tags, head HMAC" if self.keyed else "hash chain only"
        if self.ok:
            lines = [f"Audit trail intact: {self.checked} records{span}; checked {checks}."]
        else:
            lines = [f"Audit trail FAILED verification ({self.checked} records{span}; checked {checks}):"]
            lines += [f"  {problem}" for problem in self.problems]
        return lines + [f"Note: {note}" for note in self.notes]


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    purged_count: int
    purged_through_seq: int
    anchor_hash: str
    event_seq: int


@dataclass
class _Findings:
    problems: list[Problem] = field(default_factory=list)
    dropped: int = 0

    def add(self, kind: ProblemKind, detail: str, seq: int | None = None, through: int | None = None) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(kind, detail, seq, through))
        else:
            self.dropped += 1


def _utcnow() -> datetime:
    return datetime.now(UTC)


class AuditTrail:
    """Append-only, hash-chained, encrypted audit events. Thread-safe; one instance per process."""

    def __init__(
        self, store: AuditStore, keyring: Keyring | None, *, clock: Callable[[], datetime] = _utcnow
    ) -> None:
        self._store = store
        self._keyring = keyring
        self._clock = clock

    @classmethod
    def open(
        cls, url: str, keyring: Keyring | None, *, clock: Callable[[], datetime] = _utcnow
    ) -> AuditTrail:
        """Connect; with a keyring, create the tables and the authenticated head on first use."""
        store = AuditStore(url)
        if keyring is not None:
            head = HeadRecord(0, GENESIS_HASH, 0, GENESIS_HASH, keyring.active_id, "")
            store.create(replace(head, mac=keyring.mac(head.message())))
        return cls(store, keyring, clock=clock)

    @property
    def keyed(self) -> bool:
        return self._keyring is not None

    @property
    def keyring(self) -> Keyring | None:
        """The keys the trail was opened with (None: chain-only), for checks of records kept elsewhere
        that the same keys sign (``checkpoint``)."""
        return self._keyring

    @property
    def engine(self) -> Engine:
        """The trail's database engine, for stores that keep their tables beside the trail (escalations,
        staff accounts) and write them with ``transaction``."""
        return self._store.engine

    @property
    def dialect(self) -> str:
        return self._store.dialect

    def close(self) -> None:
        self._store.dispose()

    def __enter__(self) -> AuditTrail:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ append

    def append(self, event: AuditEvent) -> int:
        """Encrypt and chain one event; returns its sequence number. Blocks while another writer holds
        the head lock (use ``AuditRecorder`` from async code)."""
        keyring = self._require_key()
        if not isinstance(event, AuditEvent):
            raise TypeError("append takes an AuditEvent")
        with self._store.writing() as (conn, current):
            head = self._check_head(keyring, current)
            return self._append_locked(conn, keyring, head, event).seq

    @contextmanager
    def transaction(self) -> Iterator[tuple[Connection, Callable[[AuditEvent], None]]]:
        """One write transaction holding the head lock, for a store whose rows must commit together with
        their audit events: ``append`` chains events into it. Everything commits on a clean exit and
        rolls back on any exception, so a change and the event that records it land together or not at
        all. Blocks while another writer holds the lock (call it off the event loop)."""
        keyring = self._require_key()
        with self._store.writing() as (conn, current):
            head = self._check_head(keyring, current)

            def append(event: AuditEvent) -> None:
                nonlocal head
                head = self._append_locked(conn, keyring, head, event)

            yield conn, append

    def _check_head(self, keyring: Keyring, head: HeadRecord | None) -> HeadRecord:
        """Never extend a trail whose head was forged: re-MACing it would launder a truncation."""
        if head is None:
            raise AuditIntegrityError(
                "the audit head record is missing; refusing to write. Run `voice-agent audit verify`."
            )
        if not keyring.check_mac(head.message(), head.key_id, head.mac):
            raise AuditIntegrityError(
                "the audit head record fails its HMAC (altered, or its key is not in the keyring); "
                "refusing to write. Run `voice-agent audit verify`."
            )
        return head

    def _append_locked(self, conn: Any, keyring: Keyring, head: HeadRecord, event: AuditEvent) -> HeadRecord:
        seq = head.seq + 1
        recorded_at = from_db_time(to_db_time(self._clock()))
        aad = record_aad(seq, recorded_at, keyring.active_id, head.hash)
        sealed = keyring.seal(event.model_dump_json(exclude_none=True).encode(), aad)
        digest = chain_hash(seq, recorded_at, sealed.key_id, sealed.nonce, sealed.ciphertext, head.hash)
        self._store.insert(
            conn,
            StoredRecord(seq, recorded_at, sealed.key_id, sealed.nonce, sealed.ciphertext, head.hash, digest),
        )
        new_head = replace(head, seq=seq, hash=digest, key_id=keyring.active_id)
        new_head = replace(new_head, mac=keyring.mac(new_head.message()))
        self._store.save_head(conn, new_head)
        return new_head

    # ------------------------------------------------------------------ read

    def decrypt(self, record: StoredRecord) -> AuditEvent:
        """Open one record; raises ``DecryptionError`` or pydantic's ``ValidationError``."""
        keyring = self._require_key()
        aad = record_aad(record.seq, record.recorded_at, record.key_id, record.prev_hash)
        plaintext = keyring.open(Sealed(record.key_id, record.nonce, record.ciphertext), aad)
        return AuditEvent.model_validate_json(plaintext)

    def export(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[dict[str, Any]]:
        """Decrypted events recorded in ``[since, until)``, oldest first, as JSON-ready dicts.

        Stops with ``AuditIntegrityError`` at a record that fails its hash or tag: an auditor must not
        receive a silently partial export.
        """
        self._require_key()
        with self._store.reading() as conn:
            for record in self._store.records(conn, since=since, until=until):
                if record.computed_hash() != record.hash:
                    raise AuditIntegrityError(f"seq {record.seq} does not match its hash; run verify")
                try:
                    event = self.decrypt(record)
                except (DecryptionError, ValidationError):
                    raise AuditIntegrityError(f"seq {record.seq} does not decrypt; run verify") from None
                yield {
                    "seq": record.seq,
                    "recorded_at": canonical_time(record.recorded_at),
                    "key_id": record.key_id,
                    "prev_hash": record.prev_hash,
                    "hash": record.hash,
                    "event": event.model_dump(mode="json", exclude_none=True),
                }

    def head(self) -> HeadRecord | None:
        with self._store.reading() as conn:
            return self._store.read_head(conn)

    def vouched_head(self) -> HeadRecord:
        """The head, read in one snapshot, once its HMAC checks and the newest record is the one it names:
        what a checkpoint may pin outside the database (a forged head must never be anchored there)."""
        keyring = self._require_key()
        with self._store.reading() as conn:
            head = self._check_head(keyring, self._store.read_head(conn))
            if head.seq == head.anchor_seq:
                consistent = head.hash == head.anchor_hash
            else:
                newest = self._store.record_at(conn, head.seq)
                consistent = (
                    newest is not None and newest.hash == head.hash and newest.computed_hash() == newest.hash
                )
        if not consistent:
            raise AuditIntegrityError(
                "the newest audit record is not the one the head vouches for. Run `voice-agent audit verify`."
            )
        return head

    def hashes(self, seqs: Iterable[int]) -> tuple[HeadRecord | None, dict[int, str]]:
        """The head and the stored hash of each of ``seqs`` that exists, in one snapshot (checkpoints are
        checked against these; ``verify`` vouches for the rows themselves)."""
        if not self._store.exists():
            return None, {}
        with self._store.reading() as conn:
            return self._store.read_head(conn), self._store.hashes_at(conn, seqs)

    # ------------------------------------------------------------------ purge

    def purge(self, now: datetime, retention_days: int, actor: Actor) -> PurgeReport:
        """Delete the oldest events recorded before ``now - retention_days``, from the start of the chain.

        The trail must verify first (purging must not destroy evidence of tampering). The deletion, the
        new anchor and the ``audit.purge`` event that records it commit together.
        """
        keyring = self._require_key()
        if retention_days < 1:
            raise ValueError("retention_days must be at least 1")
        report = self.verify()
        if not report.ok:
            raise AuditIntegrityError("the audit trail does not verify; refusing to purge", report)
        cutoff = now - timedelta(days=retention_days)
        with self._store.writing() as (conn, current):
            head = self._check_head(keyring, current)
            first_kept = self._store.first_seq_recorded_since(conn, cutoff)
            through = max(head.anchor_seq, head.seq if first_kept is None else first_kept - 1)
            anchor_hash = head.anchor_hash
            purged = 0
            if through > head.anchor_seq:
                last_purged = self._store.record_at(conn, through)
                if last_purged is None:
                    raise AuditIntegrityError(f"seq {through} vanished during purge")
                anchor_hash = last_purged.hash
                purged = self._store.delete_through(conn, through)
                head = replace(head, anchor_seq=through, anchor_hash=anchor_hash)
            event = AuditEvent(
                time=self._clock(),
                actor=actor,
                purpose=AuditPurpose.AUDIT_MAINTENANCE,
                action=AuditAction.AUDIT_PURGE,
                outcome="success",
                purged_through_seq=through,
                purged_count=purged,
                anchor_hash=anchor_hash,
                range_end=cutoff,
            )
            new_head = self._append_locked(conn, keyring, head, event)
        return PurgeReport(cutoff, purged, through, anchor_hash, new_head.seq)

    # ------------------------------------------------------------------ verify

    def verify(self) -> VerifyReport:
        """Check the whole trail in one snapshot and name every problem's sequence number."""
        keyring = self._keyring
        findings = _Findings()
        notes: list[str] = []
        if not keyring:
            notes.append("no key: checked the hash chain only, not GCM tags or the head/anchor HMAC")
        if not self._store.exists():
            findings.add("missing-trail", "no audit tables at this database URL")
            return VerifyReport(
                0, keyring is not None, None, 0, None, None, tuple(findings.problems), tuple(notes)
            )

        checked = 0
        first: StoredRecord | None = None
        last: StoredRecord | None = None
        last_ok = True
        suspects: list[StoredRecord] = []
        last_purge: AuditEvent | None = None
        sessions = SessionTally() if keyring is not None else None
        with self._store.reading() as conn:
            head = self._store.read_head(conn)
            if head is None:
                findings.add("head", "the head record is missing: newest events cannot be vouched for")
            elif keyring is not None and not keyring.check_mac(head.message(), head.key_id, head.mac):
                if head.key_id not in keyring.keys:
                    findings.add("head", f"the head is sealed with key {head.key_id!r}, not in the keyring")
                else:
                    findings.add("head", "the head record fails its HMAC: it was altered outside the trail")
            anchor_seq = head.anchor_seq if head else 0
            anchor_hash = head.anchor_hash if head else GENESIS_HASH
            expected_seq, expected_prev = anchor_seq + 1, anchor_hash

            for record in self._store.records(conn):
                checked += 1
                first = first or record
                seq = record.seq
                flagged = False
                gap = seq > expected_seq
                if seq < expected_seq:
                    findings.add("inserted", f"sits at or before the purge anchor (seq {anchor_seq})", seq)
                    flagged = True
                elif gap:
                    what = "the purge anchor" if expected_seq == anchor_seq + 1 else f"seq {expected_seq - 1}"
                    findings.add(
                        "missing", f"deleted: the chain jumps from {what} to seq {seq}", expected_seq, seq - 1
                    )
                if head is not None and seq > head.seq:
                    findings.add(
                        "inserted", f"beyond the newest record the head vouches for (seq {head.seq})", seq
                    )
                    flagged = True
                content_ok = record.computed_hash() == record.hash
                if not content_ok:
                    suspects.append(record)
                    flagged = True
                elif not gap and not flagged and last_ok and record.prev_hash != expected_prev:
                    if last is None:
                        base = "genesis" if anchor_seq == 0 else f"the purge anchor (seq {anchor_seq})"
                        findings.add("anchor", f"the oldest record does not link to {base}", seq)
                    else:
                        findings.add(
                            "relinked",
                            f"seq {seq} does not link to seq {last.seq}: one was rewritten with a "
                            "recomputed hash, or forged",
                            last.seq,
                            seq,
                        )
                    flagged = True
                if keyring is not None:
                    try:
                        event = self.decrypt(record)
                    except DecryptionError as exc:
                        if not flagged:
                            findings.add("undecryptable", str(exc), seq)
                    except ValidationError:
                        findings.add("invalid-event", "decrypts, but not to a valid audit event", seq)
                    else:
                        if event.action is AuditAction.AUDIT_PURGE:
                            last_purge = event
                        if sessions is not None:
                            sessions.add(event)
                last, last_ok = record, content_ok
                expected_seq, expected_prev = seq + 1, record.hash

            for index, record in enumerate(suspects):
                classify = index < _MAX_CLASSIFY
                original = self._original_seq(conn, record, anchor_seq, anchor_hash) if classify else None
                if original is not None and original != record.seq:
                    findings.add(
                        "reordered", f"written as seq {original}, now stored at seq {record.seq}", record.seq
                    )
                else:
                    findings.add("altered", "its contents do not match its hash", record.seq)

        if head is not None:
            newest = last.seq if last else anchor_seq
            if head.seq > newest:
                findings.add(
                    "truncated",
                    f"newest records deleted: the head vouches for seq {head.seq}",
                    newest + 1,
                    head.seq,
                )
            elif last is not None and head.seq == last.seq and last_ok and head.hash != last.hash:
                findings.add("altered", "the newest record is not the one the head vouches for", last.seq)
            if keyring is not None:
                stated = (
                    (last_purge.purged_through_seq, last_purge.anchor_hash)
                    if last_purge
                    else (0, GENESIS_HASH)
                )
                if stated != (anchor_seq, anchor_hash):
                    findings.add(
                        "anchor",
                        f"the purge anchor (seq {anchor_seq}) does not match the last audit.purge event",
                    )
        if findings.dropped:
            notes.append(f"{findings.dropped} further problems not listed")
        problems = sorted(findings.problems, key=lambda p: (-1 if p.seq is None else p.seq, p.kind))
        return VerifyReport(
            checked=checked,
            keyed=keyring is not None,
            head_seq=head.seq if head else None,
            anchor_seq=anchor_seq,
            first_seq=first.seq if first else None,
            last_seq=last.seq if last else None,
            problems=tuple(problems),
            notes=tuple(notes),
            sessions=sessions,
        )

    def _original_seq(
        self, conn: Any, record: StoredRecord, anchor_seq: int, anchor_hash: str, depth: int = 3
    ) -> int | None:
        """Where a mismatching row was first written, if it is intact but moved: its predecessor (found by
        the hash it links to) tells the original position, and the row's own hash confirms it."""
        if record.prev_hash == anchor_hash:
            candidate = anchor_seq + 1
        else:
            pred_seq = self._store.seq_with_hash(conn, record.prev_hash)
            pred = None if pred_seq is None else self._store.record_at(conn, pred_seq)
            if pred is None:
                return None
            if pred.computed_hash() == pred.hash:
                pred_original: int | None = pred.seq
            elif depth > 0:
                pred_original = self._original_seq(conn, pred, anchor_seq, anchor_hash, depth - 1)
            else:
                pred_original = None
            if pred_original is None:
                return None
            candidate = pred_original + 1
        return candidate if record.computed_hash(candidate) == record.hash else None

    def _require_key(self) -> Keyring:
        if self._keyring is None:
            raise AuditKeyRequired("this operation needs the audit keys; the trail was opened without them")
        return self._keyring
