"""Row MACs for what the console trusts: staff accounts, their recovery codes and sessions, and escalations.

Whoever can write to the database but does not hold the audit keys (a database login, a restored and
edited backup, an injection elsewhere) could otherwise raise a role, swap a password hash, reset a TOTP
enrolment, add a recovery code of their own, or mark an emergency resolved without a trace. Each such
row carries an HMAC-SHA256 tag (``Keyring.mac`` under a purpose of its own, so a staff row's tag is never
valid for an escalation) over a canonical encoding of its covered columns, its primary key first, and
the id of the key beside it so keys can rotate (a row is re-tagged under the active key at its next
write; older keys stay in the keyring). The stores write a tag with every insert and update and check
it on every read; a row that fails is refused and raises a ``record-tampered`` alert (``TamperAlarm``),
never with its values.

The encoding is a domain string, then per column its name and a typed, length-prefixed value, so no two
different rows (or column sets, or tables) encode to the same bytes.

Not covered, by design: a whole row rolled back to an earlier tagged state of itself, or deleted (both
show in the audit trail, which records every change); see docs/architecture.md, threat model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import Column, Connection, Row, String, Table, inspect, select, text, update

from .alerts import ALERTS, Signals
from .crypto import Keyring
from .events import Actor, AuditAction, AuditEvent, AuditPurpose, StaffChange
from .store import canonical_time
from .trail import AuditTrail

log = logging.getLogger(__name__)

KEY_ID_COLUMN = "mac_key_id"
MAC_COLUMN = "mac"
#: One alert per tampered row per window, however often the queue or a login reads it.
ALARM_WINDOW = timedelta(hours=1)
_DOMAIN = b"voice-agent-row/v1"


class Verdict(StrEnum):
    """A row's check; every value but ``ok`` is an error class name the audit trail may record."""

    OK = "ok"
    UNSEALED = "UnsealedRow"
    UNKNOWN_KEY = "UnknownRowKey"
    BAD_MAC = "BadRowMac"


def mac_columns() -> list[Column[str]]:
    """The tag and its key id; nullable only so ``add_mac_columns`` can add them to an existing table
    (a row without a tag is refused like one with a wrong tag)."""
    return [Column(KEY_ID_COLUMN, String(32)), Column(MAC_COLUMN, String(64))]


def _field(value: bytes) -> bytes:
    return len(value).to_bytes(8, "big") + value


def _typed(value: object) -> bytes:
    """One value as a type letter and its bytes. Only the types the covered columns hold; anything else
    is a programming error, not a row to guess at."""
    if value is None:
        return b"N"
    if isinstance(value, bool):
        return b"B1" if value else b"B0"
    if isinstance(value, int):
        return b"I" + str(value).encode()
    if isinstance(value, str):  # enum values too (StrEnum)
        return b"S" + str.__str__(value).encode()
    if isinstance(value, UUID):
        return b"U" + value.hex.encode()
    if isinstance(value, datetime):  # naive values are UTC, as the stores write them
        return b"T" + canonical_time(value).encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return b"X" + bytes(value)
    raise TypeError(f"cannot encode a {type(value).__name__} for a row MAC")


@dataclass(frozen=True)
class RowSeal:
    """How one table's rows are tagged: the MAC purpose and the covered columns (primary key first)."""

    purpose: str
    columns: tuple[str, ...]

    def message(self, values: Mapping[Any, Any]) -> bytes:
        parts = [_DOMAIN, _field(self.purpose.encode())]
        for name in self.columns:
            parts += [_field(name.encode()), _field(_typed(values[name]))]
        return b"".join(parts)

    def tag(self, keyring: Keyring, values: Mapping[Any, Any]) -> dict[str, str]:
        """The two tag columns for a row holding ``values``, under the active key."""
        return {
            KEY_ID_COLUMN: keyring.active_id,
            MAC_COLUMN: keyring.mac(self.message(values), purpose=self.purpose),
        }

    def check(self, keyring: Keyring, row: Mapping[Any, Any]) -> Verdict:
        """``row``: a row's mapping (``Row._mapping``) holding the covered and tag columns."""
        key_id, tag = row.get(KEY_ID_COLUMN), row.get(MAC_COLUMN)
        if not isinstance(key_id, str) or not isinstance(tag, str):
            return Verdict.UNSEALED
        if key_id not in keyring.keys:
            return Verdict.UNKNOWN_KEY
        try:
            message = self.message(row)
        except TypeError:  # a value of a type the store never writes (a float in a SQLite column)
            return Verdict.BAD_MAC
        if not keyring.check_mac(message, key_id, tag, purpose=self.purpose):
            return Verdict.BAD_MAC
        return Verdict.OK


def add_mac_columns(conn: Connection, table: Table) -> bool:
    """Add the tag columns to a table created before them; True when they were added (the caller then
    tags the rows already there, in the same transaction). Run it where ``create_tables`` runs: under
    the audit head lock (SQLite) or the DDL advisory lock (PostgreSQL), so one worker migrates."""
    present = {column["name"] for column in inspect(conn).get_columns(table.name)}
    if MAC_COLUMN in present:
        return False
    quote = conn.dialect.identifier_preparer.quote
    for name in (KEY_ID_COLUMN, MAC_COLUMN):
        if name not in present:
            kind = table.c[name].type.compile(dialect=conn.dialect)
            conn.execute(text(f"ALTER TABLE {quote(table.name)} ADD COLUMN {quote(name)} {kind}"))
    return True


def seal_existing(conn: Connection, table: Table, seal: RowSeal, keyring: Keyring) -> list[Row[Any]]:
    """Tag every row of ``table`` in the caller's transaction, right after ``add_mac_columns`` added the
    tag columns, so no window exists in which an untagged row is accepted. Returns the rows (their
    covered columns), for the caller's ``seal_events``."""
    key = list(table.primary_key.columns)
    rows = list(conn.execute(select(*(table.c[name] for name in seal.columns))).all())
    for row in rows:
        conn.execute(
            update(table)
            .where(*(column == row._mapping[column.name] for column in key))
            .values(**seal.tag(keyring, row._mapping))
        )
    return rows


def seal_events(
    actor: Actor,
    purpose: AuditPurpose,
    ids: Iterable[str],
    *,
    now: datetime,
    staff_change: StaffChange | None = None,
) -> list[AuditEvent]:
    """``record.seal`` events for rows tagged when the columns were added (ids in batches of 500; one
    event with a count of 0 when there were none, so the migration itself is on the trail).
    ``staff_change`` tells two tables of one purpose apart, so a second seal of either shows."""
    listed = list(ids)
    batches = [listed[i : i + 500] for i in range(0, len(listed), 500)] or [[]]
    return [
        AuditEvent(
            time=now,
            actor=actor,
            purpose=purpose,
            action=AuditAction.RECORD_SEAL,
            outcome="success",
            resource_ids=tuple(batch),
            event_count=len(batch),
            staff_change=staff_change,
        )
        for batch in batches
    ]


class TamperAlarm:
    """Raises ``record-tampered`` for a row that failed its check: a row in ``security_alerts`` (the
    compliance officer's panel, once per row and window across workers), the alert counter, a log line
    with the record kind only, and a ``security.alert`` audit event naming the row's id and the verdict.

    Call it outside any write transaction (SQLite has one writer: the alert is its own transaction).
    """

    def __init__(
        self,
        trail: AuditTrail,
        keyring: Keyring,
        actor: Actor,
        purpose: AuditPurpose,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._trail = trail
        self._clock = clock
        self._signals = Signals(trail, keyring, clock=clock)
        self._signals.create()
        self._actor = actor
        self._purpose = purpose
        #: rows alerted on by this process, and when: the queue re-reads every few seconds
        self._recent: dict[str, float] = {}

    def __call__(self, record: str, row_id: str, verdict: Verdict) -> None:
        """Alert on one row (``record``: its kind, a fixed word). A failure to record the alert is
        logged, not raised: the row is refused either way, and the queue must still show the rest."""
        scope = f"{record}|{row_id}"
        now = self._clock().timestamp()
        last = self._recent.get(scope)
        if last is not None and now - last < ALARM_WINDOW.total_seconds():
            return
        try:
            if self._signals.raise_once("record-tampered", scope, ALARM_WINDOW):
                ALERTS.labels("record-tampered").inc()
                log.warning("security alert: record-tampered (%s row fails its integrity check)", record)
                self._trail.append(
                    AuditEvent(
                        time=self._clock(),
                        actor=self._actor,
                        purpose=self._purpose,
                        action=AuditAction.SECURITY_ALERT,
                        outcome="denied",
                        resource_ids=(row_id,),
                        alert="record-tampered",
                        error=verdict.value,
                    )
                )
        except Exception as exc:
            log.error("could not record a record-tampered alert (%s)", type(exc).__name__)
            return
        self._recent[scope] = now


__all__ = [
    "ALARM_WINDOW",
    "KEY_ID_COLUMN",
    "MAC_COLUMN",
    "RowSeal",
    "TamperAlarm",
    "Verdict",
    "add_mac_columns",
    "mac_columns",
    "seal_events",
    "seal_existing",
]
