"""Rows of the audit trail in SQL (SQLite by default, PostgreSQL for shared deployments).

``audit_events`` holds one encrypted record per event, chained by SHA-256: each row's ``hash`` covers
its own columns and the previous row's hash, so a changed, removed, moved or forged row breaks the chain
at a nameable sequence number. ``audit_head`` is a single row, HMAC'd with a key that never enters the
database, naming the newest record (so deleting the newest rows is detected) and the purge anchor (the
hash of the last purged record, so a chain whose start was purged on purpose still verifies).

Appends are serialised across processes by locking that head row inside the append transaction:
``SELECT ... FOR UPDATE`` on PostgreSQL, ``BEGIN IMMEDIATE`` on SQLite.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    DateTime,
    Engine,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    inspect,
    select,
    update,
)
from sqlalchemy.engine import make_url

GENESIS_HASH = "0" * 64
_HEAD_ID = 1
#: Arbitrary constant for ``pg_advisory_xact_lock`` while creating tables (several workers may start at once).
_PG_DDL_LOCK = 0x766F_6963_6561_7564

metadata = MetaData()

events_table = Table(
    "audit_events",
    metadata,
    Column("seq", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=False),
    #: Plaintext on purpose (UTC, naive): retention and export select by it. It is not PHI.
    Column("recorded_at", DateTime(timezone=False), nullable=False, index=True),
    Column("key_id", String(32), nullable=False),
    Column("nonce", LargeBinary(12), nullable=False),
    Column("ciphertext", LargeBinary(), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
)

head_table = Table(
    "audit_head",
    metadata,
    Column("id", Integer(), primary_key=True, autoincrement=False),
    Column("seq", BigInteger(), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("anchor_seq", BigInteger(), nullable=False),
    Column("anchor_hash", String(64), nullable=False),
    Column("key_id", String(32), nullable=False),
    Column("mac", String(64), nullable=False),
)


def to_db_time(moment: datetime) -> datetime:
    """Aware -> naive UTC at microsecond precision: what both backends store and give back unchanged."""
    if moment.tzinfo is None:
        raise ValueError("audit timestamps must be timezone-aware")
    return moment.astimezone(UTC).replace(tzinfo=None)


def from_db_time(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def canonical_time(moment: datetime) -> str:
    return from_db_time(moment).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class StoredRecord:
    """One ``audit_events`` row as stored."""

    seq: int
    recorded_at: datetime  # aware UTC
    key_id: str
    nonce: bytes
    ciphertext: bytes
    prev_hash: str
    hash: str

    def computed_hash(self, seq: int | None = None) -> str:
        """The chain hash of this row's contents (optionally as if it sat at another ``seq``)."""
        return chain_hash(
            self.seq if seq is None else seq,
            self.recorded_at,
            self.key_id,
            self.nonce,
            self.ciphertext,
            self.prev_hash,
        )


@dataclass(frozen=True)
class HeadRecord:
    """The newest record and the purge anchor, with an HMAC from the keyring."""

    seq: int
    hash: str
    anchor_seq: int
    anchor_hash: str
    key_id: str
    mac: str

    def message(self) -> bytes:
        return (
            f"voice-agent-audit/head/v1|{self.seq}|{self.hash}|{self.anchor_seq}|{self.anchor_hash}".encode()
        )


def _field(digest: Any, value: bytes) -> None:
    digest.update(len(value).to_bytes(8, "big"))
    digest.update(value)


def chain_hash(
    seq: int, recorded_at: datetime, key_id: str, nonce: bytes, ciphertext: bytes, prev_hash: str
) -> str:
    """SHA-256 over length-prefixed fields, so no two different rows can encode to the same bytes."""
    digest = hashlib.sha256(b"voice-agent-audit/record/v1")
    for value in (
        str(seq).encode(),
        canonical_time(recorded_at).encode(),
        key_id.encode(),
        nonce,
        ciphertext,
        prev_hash.encode(),
    ):
        _field(digest, value)
    return digest.hexdigest()


def record_aad(seq: int, recorded_at: datetime, key_id: str, prev_hash: str) -> bytes:
    """GCM associated data: a record only decrypts at its own place in the chain."""
    return f"voice-agent-audit/aad/v1|{seq}|{canonical_time(recorded_at)}|{key_id}|{prev_hash}".encode()


def _record(row: Any) -> StoredRecord:
    return StoredRecord(
        seq=int(row.seq),
        recorded_at=from_db_time(row.recorded_at),
        key_id=str(row.key_id),
        nonce=bytes(row.nonce),
        ciphertext=bytes(row.ciphertext),
        prev_hash=str(row.prev_hash),
        hash=str(row.hash),
    )


class AuditStore:
    """SQL access for the trail: engine set-up, locking, and row-level reads and writes."""

    def __init__(self, url: str) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise ValueError("the audit trail supports sqlite:/// and postgresql+psycopg:// URLs")
        if parsed.drivername == "postgresql":  # psycopg 3 is the installed driver, not psycopg2
            parsed = parsed.set(drivername="postgresql+psycopg")
        options: dict[str, Any] = {"hide_parameters": True, "pool_pre_ping": True}
        self._sqlite_file: Path | None = None
        if self.dialect == "sqlite":
            if parsed.database in (None, "", ":memory:"):
                raise ValueError("the audit trail needs a SQLite file, not an in-memory database")
            self._sqlite_file = Path(parsed.database)
            self._sqlite_file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            options["connect_args"] = {"timeout": 30}
        self.engine: Engine = create_engine(parsed, **options)
        if self.dialect == "sqlite":
            _sqlite_locking(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def reading(self) -> Iterator[Connection]:
        """One consistent snapshot for a whole verify or export."""
        with self.engine.connect() as conn:
            if self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    @contextmanager
    def writing(self) -> Iterator[tuple[Connection, HeadRecord | None]]:
        """A write transaction holding the head lock: appenders queue here, across processes."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(audit_write=True)
            with conn.begin():
                yield conn, self.read_head(conn, lock=True)

    # ------------------------------------------------------------------ schema

    def exists(self) -> bool:
        return set(inspect(self.engine).get_table_names()) >= {"audit_events", "audit_head"}

    def create(self, initial_head: HeadRecord) -> None:
        """Create the tables and the head row if absent; safe when several workers start together."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(audit_write=True)
            with conn.begin():
                create_tables(conn, metadata)
                # A missing head beside existing events is tampering: leave it for verify to report
                # (and for appends to refuse) rather than papering over it with a fresh head.
                no_events = conn.execute(select(events_table.c.seq).limit(1)).first() is None
                if no_events and conn.execute(select(head_table.c.id)).first() is None:
                    conn.execute(head_table.insert().values(id=_HEAD_ID, **_head_values(initial_head)))
                    if self._sqlite_file is not None:
                        self._sqlite_file.chmod(0o600)  # encrypted, but sizes and times are nobody else's

    # ------------------------------------------------------------------ rows

    def read_head(self, conn: Connection, *, lock: bool = False) -> HeadRecord | None:
        query = select(head_table).where(head_table.c.id == _HEAD_ID)
        if lock and self.dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            return None
        return HeadRecord(
            seq=int(row.seq),
            hash=str(row.hash),
            anchor_seq=int(row.anchor_seq),
            anchor_hash=str(row.anchor_hash),
            key_id=str(row.key_id),
            mac=str(row.mac),
        )

    def save_head(self, conn: Connection, head: HeadRecord) -> None:
        conn.execute(update(head_table).where(head_table.c.id == _HEAD_ID).values(**_head_values(head)))

    def insert(self, conn: Connection, record: StoredRecord) -> None:
        conn.execute(
            events_table.insert().values(
                seq=record.seq,
                recorded_at=to_db_time(record.recorded_at),
                key_id=record.key_id,
                nonce=record.nonce,
                ciphertext=record.ciphertext,
                prev_hash=record.prev_hash,
                hash=record.hash,
            )
        )

    def records(
        self, conn: Connection, *, since: datetime | None = None, until: datetime | None = None
    ) -> Iterator[StoredRecord]:
        """Rows in chain order, streamed (a six-year trail does not fit in memory)."""
        query = select(events_table).order_by(events_table.c.seq)
        if since is not None:
            query = query.where(events_table.c.recorded_at >= to_db_time(since))
        if until is not None:
            query = query.where(events_table.c.recorded_at < to_db_time(until))
        for row in conn.execution_options(yield_per=500).execute(query):
            yield _record(row)

    def record_at(self, conn: Connection, seq: int) -> StoredRecord | None:
        row = conn.execute(select(events_table).where(events_table.c.seq == seq)).first()
        return None if row is None else _record(row)

    def seq_with_hash(self, conn: Connection, digest: str) -> int | None:
        row = conn.execute(select(events_table.c.seq).where(events_table.c.hash == digest).limit(1)).first()
        return None if row is None else int(row.seq)

    def hashes_at(self, conn: Connection, seqs: Iterable[int]) -> dict[int, str]:
        """The stored hash of each of ``seqs`` that exists (in batches: a checkpoint file may name many)."""
        wanted = sorted(set(seqs))
        found: dict[int, str] = {}
        for start in range(0, len(wanted), 500):
            batch = wanted[start : start + 500]
            query = select(events_table.c.seq, events_table.c.hash).where(events_table.c.seq.in_(batch))
            found.update((int(row.seq), str(row.hash)) for row in conn.execute(query))
        return found

    def first_seq_recorded_since(self, conn: Connection, cutoff: datetime) -> int | None:
        value = conn.execute(
            select(func.min(events_table.c.seq)).where(events_table.c.recorded_at >= to_db_time(cutoff))
        ).scalar()
        return None if value is None else int(value)

    def delete_through(self, conn: Connection, seq: int) -> int:
        result = conn.execute(delete(events_table).where(events_table.c.seq <= seq))
        return int(result.rowcount)


def _head_values(head: HeadRecord) -> dict[str, Any]:
    return {
        "seq": head.seq,
        "hash": head.hash,
        "anchor_seq": head.anchor_seq,
        "anchor_hash": head.anchor_hash,
        "key_id": head.key_id,
        "mac": head.mac,
    }


def _sqlite_locking(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, open transactions, so writers can take the lock up front."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # pysqlite must not emit its own (deferred) BEGIN
        # WAL: a long verify or export (a read snapshot) does not block the agent's appends;
        # FULL: a committed audit event survives a power cut.
        _wal(dbapi_connection)
        dbapi_connection.execute("PRAGMA synchronous=FULL")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        write = conn.get_execution_options().get("audit_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _wal(dbapi_connection: Any) -> None:
    """WAL mode, which persists in the file: set by the first connection, only read by the others. Two
    first connections to a new file both try to set it, and SQLite answers the loser "database is
    locked" at once (the busy handler does not cover a journal-mode change), so that one tries again."""
    for attempt in range(50):
        try:
            if dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                dbapi_connection.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError:
            if attempt == 49:
                raise
            time.sleep(0.05 * (attempt + 1) ** 0.5)


def create_tables(conn: Connection, tables: MetaData) -> None:
    """Create ``tables`` if absent, one worker at a time. On PostgreSQL two workers starting together on
    a new database race in the catalogue (``UniqueViolation`` on ``pg_type``, which once stopped a worker
    in CI), so a transaction-scoped advisory lock puts their CREATE TABLEs in turn."""
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_PG_DDL_LOCK)))
    tables.create_all(conn, checkfirst=True)


__all__ = [
    "GENESIS_HASH",
    "AuditStore",
    "HeadRecord",
    "StoredRecord",
    "chain_hash",
    "create_tables",
    "events_table",
    "head_table",
    "record_aad",
]
