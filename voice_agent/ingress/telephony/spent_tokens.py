"""Each signed Twilio call opens one media stream, once, on whichever worker: the stream token's call is
marked spent in the shared database (a primary key, so two workers racing on one replayed handshake
cannot both win). Rows hold a SHA-256 of the CallSid and an expiry, nothing of the caller.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from voice_agent.audit.store import create_tables, to_db_time

__all__ = ["SpentTokens"]

metadata = MetaData()

spent_table = Table(
    "stream_tokens_spent",
    metadata,
    Column("call", String(64), primary_key=True),
    Column("expires", DateTime(timezone=False), nullable=False, index=True),
)


class SpentTokens:
    """Synchronous (callers run it in a thread, as they do the trail)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def create(self) -> None:
        with self._engine.begin() as conn:
            create_tables(conn, metadata)

    def spend(self, call_id: str, *, keep: timedelta) -> bool:
        """True the first time a call's stream opens; False for every later try (a replay)."""
        now = datetime.now(UTC)
        digest = hashlib.sha256(f"twilio|{call_id}".encode()).hexdigest()
        try:
            with self._engine.begin() as conn:
                conn.execute(delete(spent_table).where(spent_table.c.expires < to_db_time(now)))
                conn.execute(insert(spent_table).values(call=digest, expires=to_db_time(now + keep)))
        except IntegrityError:
            return False
        return True
