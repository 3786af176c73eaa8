"""Breach detection: signals counted across workers, and the alerts they raise.

HIPAA's security incident procedures need someone to notice an attack while it happens. Each signal
(a failed identity check, an urgent escalation, a carrier-authentication failure, a failed FHIR
authentication, a call refused at the ceiling, a refused staff login step) is one row in a table beside
the audit trail: its kind, an HMAC of its scope (a calling number or a source address, under a key
derived from the audit keys, never stored in the database; "all" for clinic-wide counts) and a time,
nothing else. When a scope's signals in a rule's window reach its count, one alert is raised for that
window: a row in ``security_alerts`` (the primary key makes "one" hold across workers), a
``security.alert`` audit event, the ``voice_agent_security_alerts_total{kind}`` counter, the compliance
officer's console panel and, when one is set, the clinic's SIEM (``siem``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal, Protocol

from prometheus_client import Counter
from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    delete,
    func,
    insert,
    select,
)
from sqlalchemy.exc import IntegrityError

from .crypto import Keyring
from .events import AlertKind
from .recorder import AuditRecorder
from .store import create_tables, from_db_time, to_db_time
from .trail import AuditTrail

__all__ = ["ALERT_RULES", "AlertRule", "AlertSink", "BreachDetector", "RaisedAlert", "SignalKind", "Signals"]

log = logging.getLogger(__name__)

SignalKind = Literal[
    "verification-failure",
    "urgent-escalation",
    "carrier-auth-failure",
    "fhir-auth-failure",
    "ceiling-refusal",
    "staff-login-failure",
]

ALERTS = Counter("voice_agent_security_alerts_total", "Breach-detection alerts raised, by kind.", ["kind"])


@dataclass(frozen=True)
class AlertRule:
    alert: AlertKind
    count: int
    window: timedelta


#: What raises an alert. Clinic-wide bursts are counted under the scope "all"; urgent escalations per
#: calling number or browser source (one phone flooding the queue). Below each: what it catches.
ALERT_RULES: dict[SignalKind, AlertRule] = {
    # guessing spread over many names and numbers, each below its own lockout
    "verification-failure": AlertRule("verification-burst", 20, timedelta(minutes=15)),
    # fake emergencies from one phone or browser (they are merged in the queue; the alert says so)
    "urgent-escalation": AlertRule("urgent-flood", 3, timedelta(hours=1)),
    # forged webhooks, unsigned or replayed streams, wrong stream secrets, unlisted sources
    "carrier-auth-failure": AlertRule("carrier-auth-failures", 10, timedelta(minutes=10)),
    # the FHIR server's certificate or the agent's was refused: a man in the middle, or an expiry
    "fhir-auth-failure": AlertRule("fhir-certificate-failure", 1, timedelta(hours=1)),
    # someone filling the lines so patients get busy signals
    "ceiling-refusal": AlertRule("ceiling-refusals", 20, timedelta(minutes=10)),
    # password guessing or a lock-out attempt on the staff console (each refused login step, clinic-wide:
    # spread over addresses and names, each below its own throttle, it still adds up here)
    "staff-login-failure": AlertRule("staff-login-burst", 20, timedelta(minutes=15)),
}

metadata = MetaData()

signals_table = Table(
    "security_signals",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(24), nullable=False),
    Column("scope", String(64), nullable=False, index=True),
    Column("at", DateTime(timezone=False), nullable=False),
)

alerts_table = Table(
    "security_alerts",
    metadata,
    Column("kind", String(32), nullable=False),
    Column("scope", String(64), nullable=False),
    #: which window of the rule (seconds since the epoch // window): one alert per scope and window
    Column("window", Integer, nullable=False),
    Column("at", DateTime(timezone=False), nullable=False),
    PrimaryKeyConstraint("kind", "scope", "window"),
)


@dataclass(frozen=True)
class RaisedAlert:
    kind: AlertKind
    at: datetime


class AlertSink(Protocol):
    """Somewhere outside the agent that alerts go too (the clinic's SIEM)."""

    async def send(self, alert: RaisedAlert) -> None: ...


class Signals:
    """The shared counts (synchronous: callers run it in a thread)."""

    def __init__(
        self,
        trail: AuditTrail,
        keyring: Keyring,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._trail = trail
        self._key = hmac.new(keyring.keys[keyring.active_id], b"security-signals v1", "sha256").digest()
        self._clock = clock

    def create(self) -> None:
        with self._trail.engine.begin() as conn:
            create_tables(conn, metadata)

    def scope(self, value: str | None) -> str:
        """The stored form of a scope: an HMAC, so the table holds no number or address."""
        return hmac.new(self._key, (value or "all").encode(), hashlib.sha256).hexdigest()

    def record(self, kind: SignalKind, scope: str | None = None) -> AlertKind | None:
        """Count one signal; the alert it raises, if it is the one that reached the rule's count in a
        window that has had no alert for this scope yet."""
        rule = ALERT_RULES[kind]
        digest = self.scope(scope)
        now = self._clock()
        oldest = max(r.window for r in ALERT_RULES.values())
        with self._trail.engine.begin() as conn:
            conn.execute(insert(signals_table).values(kind=kind, scope=digest, at=to_db_time(now)))
            conn.execute(delete(signals_table).where(signals_table.c.at < to_db_time(now - oldest)))
            count = conn.execute(
                select(func.count())
                .select_from(signals_table)
                .where(
                    signals_table.c.kind == kind,
                    signals_table.c.scope == digest,
                    signals_table.c.at >= to_db_time(now - rule.window),
                )
            ).scalar_one()
        if count < rule.count:
            return None
        window = int(now.timestamp() // rule.window.total_seconds())
        return rule.alert if self._raise(rule.alert, digest, window, now) else None

    def raise_once(self, alert: AlertKind, scope: str | None, window: timedelta) -> bool:
        """An alert raised by a rule kept elsewhere (a lockout): once per scope and window."""
        now = self._clock()
        return self._raise(alert, self.scope(scope), int(now.timestamp() // window.total_seconds()), now)

    def _raise(self, alert: AlertKind, digest: str, window: int, now: datetime) -> bool:
        try:
            with self._trail.engine.begin() as conn:
                conn.execute(
                    insert(alerts_table).values(kind=alert, scope=digest, window=window, at=to_db_time(now))
                )
        except IntegrityError:  # another worker (or an earlier signal) raised it for this window
            return False
        return True

    def recent(self, since: datetime, until: datetime, limit: int = 200) -> list[RaisedAlert]:
        """The newest alerts raised in a range (the console's panel), however busy the trail is."""
        t = alerts_table
        with self._trail.engine.connect() as conn:
            rows = conn.execute(
                select(t.c.kind, t.c.at)
                .where(t.c.at >= to_db_time(since), t.c.at <= to_db_time(until))
                .order_by(t.c.at.desc())
                .limit(limit)
            ).all()
        return [RaisedAlert(row.kind, from_db_time(row.at)) for row in rows]


class BreachDetector:
    """Signals and alerts for the event loop: counted off the loop, each alert audited, counted,
    logged (its kind only) and sent to the sinks. A sink that fails loses nothing: the alert is in the
    trail and on the console already."""

    def __init__(self, signals: Signals, auditor: AuditRecorder, sinks: tuple[AlertSink, ...] = ()) -> None:
        self.signals = signals
        self._auditor = auditor
        self._sinks = sinks

    async def signal(self, kind: SignalKind, scope: str | None = None) -> None:
        alert = await asyncio.to_thread(self.signals.record, kind, scope)
        if alert is not None:
            await self._alert(alert)

    async def raise_once(self, alert: AlertKind, scope: str | None, window: timedelta) -> None:
        if await asyncio.to_thread(self.signals.raise_once, alert, scope, window):
            await self._alert(alert)

    async def _alert(self, kind: AlertKind) -> None:
        ALERTS.labels(kind).inc()
        log.warning("security alert: %s", kind)
        await self._auditor.alert(kind)
        raised = RaisedAlert(kind, datetime.now(UTC))
        for sink in self._sinks:
            try:
                await sink.send(raised)
            except Exception as error:  # a SIEM outage must not break a call
                log.warning("could not forward a security alert to the SIEM (%s)", type(error).__name__)
