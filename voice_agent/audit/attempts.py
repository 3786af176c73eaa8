"""Failed identity checks counted across calls and workers, so guessing cannot be spread over many calls.

Each failure is counted three ways: per claimed identity (the name said: a guesser fixes the name and
varies the birth date), per calling number and per source address. The table beside the audit trail
holds, per failure, the kind and an HMAC-SHA256 of the value under a key derived from the audit keys
(outside the database), and a time: no name, number or address. While a key has ``limit`` failures
within its ``window``, verification for it is refused (the window is the cooling period). Rotating the
active audit key starts the counts afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, delete, func, insert, select

from fhir_adapters.scheduling import normalise_name

from .alerts import BreachDetector
from .crypto import Keyring
from .events import AlertKind
from .store import create_tables, to_db_time
from .trail import AuditTrail

__all__ = ["AttemptGate", "AttemptKind", "AttemptLimit", "VerificationAttempts"]

AttemptKind = Literal["identity", "number", "source"]

_ALERT: dict[AttemptKind, AlertKind] = {
    "identity": "identity-locked",
    "number": "number-locked",
    "source": "source-locked",
}

metadata = MetaData()

failures_table = Table(
    "verification_failures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(8), nullable=False),
    Column("digest", String(64), nullable=False, index=True),
    Column("at", DateTime(timezone=False), nullable=False),
)


@dataclass(frozen=True)
class AttemptLimit:
    limit: int
    window: timedelta


class VerificationAttempts:
    """The shared counts (synchronous: callers run it in a thread, as they do the trail)."""

    def __init__(
        self,
        trail: AuditTrail,
        keyring: Keyring,
        limits: dict[AttemptKind, AttemptLimit],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._trail = trail
        self._key = hmac.new(keyring.keys[keyring.active_id], b"verification-attempts v1", "sha256").digest()
        self._limits = limits
        self._clock = clock

    def create(self) -> None:
        with self._trail.engine.begin() as conn:
            create_tables(conn, metadata)

    def keys(
        self, *, name: str | None, number: str | None, source: str | None
    ) -> list[tuple[AttemptKind, str]]:
        """The digests this attempt counts against (what is unknown counts against nothing)."""
        values: list[tuple[AttemptKind, str | None]] = [
            # the gateway's own name comparison: "O'Brien", "o brien" and "OBrien" are one identity
            ("identity", normalise_name(name) if name else None),
            ("number", "".join(c for c in number if c.isdigit()) if number else None),
            ("source", source),
        ]
        return [
            (kind, hmac.new(self._key, f"{kind}|{value}".encode(), hashlib.sha256).hexdigest())
            for kind, value in values
            if value
        ]

    def _counts(self, keys: Sequence[tuple[AttemptKind, str]]) -> dict[AttemptKind, int]:
        now = self._clock()
        counts: dict[AttemptKind, int] = {}
        with self._trail.engine.connect() as conn:
            for kind, digest in keys:
                since = to_db_time(now - self._limits[kind].window)
                counts[kind] = conn.execute(
                    select(func.count())
                    .select_from(failures_table)
                    .where(failures_table.c.digest == digest, failures_table.c.at >= since)
                ).scalar_one()
        return counts

    def locked(self, keys: Sequence[tuple[AttemptKind, str]]) -> list[AttemptKind]:
        """The kinds whose key is at its limit: verification is refused while any is."""
        return [kind for kind, count in self._counts(keys).items() if count >= self._limits[kind].limit]

    def failed(self, keys: Sequence[tuple[AttemptKind, str]]) -> list[tuple[AttemptKind, str]]:
        """Count one failure; returns the keys now at their limit (locked: the caller alerts, once)."""
        now = self._clock()
        oldest = max(limit.window for limit in self._limits.values())
        with self._trail.engine.begin() as conn:
            for kind, digest in keys:
                conn.execute(insert(failures_table).values(kind=kind, digest=digest, at=to_db_time(now)))
            conn.execute(delete(failures_table).where(failures_table.c.at < to_db_time(now - oldest)))
        counts = self._counts(keys)
        return [(kind, digest) for kind, digest in keys if counts[kind] >= self._limits[kind].limit]

    def window(self, kind: AttemptKind) -> timedelta:
        return self._limits[kind].window


class AttemptGate:
    """The dialogue's view of the counts (``policy.IdentityGate``): off the event loop; every failure is
    a breach-detection signal, and a key that locks raises an alert, once per cooling period."""

    def __init__(self, attempts: VerificationAttempts, detector: BreachDetector) -> None:
        self._attempts = attempts
        self._detector = detector

    async def locked(self, *, name: str | None, number: str | None, source: str | None) -> bool:
        keys = self._attempts.keys(name=name, number=number, source=source)
        return bool(keys) and bool(await asyncio.to_thread(self._attempts.locked, keys))

    async def failed(self, *, name: str | None, number: str | None, source: str | None) -> None:
        keys = self._attempts.keys(name=name, number=number, source=source)
        await self._detector.signal("verification-failure")
        for kind, digest in await asyncio.to_thread(self._attempts.failed, keys):
            await self._detector.raise_once(_ALERT[kind], digest, self._attempts.window(kind))
