"""Escalation rows carry a MAC under the audit keys, on SQLite and PostgreSQL: an emergency marked resolved
in SQL reappears to the front desk as open, urgent and tampered (never purged, alerted once), can still be
opened (its callback number is vouched for by its own GCM tag) and claimed; a correct row round-trips,
also under a rotated key; rows from before the tag columns are tagged once, audited."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from sqlalchemy import Engine, select, text, update

from voice_agent.audit import AuditTrail, Keyring
from voice_agent.audit.alerts import Signals
from voice_agent.audit.row_integrity import Verdict
from voice_agent.escalations import (
    EscalationCategory,
    EscalationStatus,
    EscalationStore,
    ResolutionOutcome,
    Urgency,
)
from voice_agent.escalations.store import ESCALATION_SEAL, escalations_table

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.backends import Backend, Clock

CALLBACK = "+15551230001"


def events(backend: Backend, keyring: Keyring) -> list[dict[str, Any]]:
    with AuditTrail.open(backend.url, keyring) as trail:
        assert trail.verify().ok
        return [item["event"] for item in trail.export()]


def alerts(backend: Backend, keyring: Keyring, clock: Clock) -> list[str]:
    with AuditTrail.open(backend.url, keyring) as trail:
        raised = Signals(trail, keyring).recent(clock.now - timedelta(days=1), clock.now + timedelta(days=60))
    return [a.kind for a in raised]


def test_an_emergency_resolved_in_sql_reappears_as_needing_attention(
    store: EscalationStore, backend: Backend, keyring: Keyring, clock: Clock, raw: Engine
) -> None:
    emergency = store.create(
        category=EscalationCategory.EMERGENCY, session_id=uuid4(), callback_number=CALLBACK
    )
    other = store.create(category=EscalationCategory.CALLER_REQUEST, session_id=uuid4())
    when = clock.now.replace(tzinfo=None) - timedelta(days=90)
    with raw.begin() as conn:  # someone with the database but not the key hides it
        conn.execute(
            update(escalations_table)
            .where(escalations_table.c.id == emergency.id)
            .values(
                status="resolved",
                claimed_by="mallory",
                claimed_at=when,
                resolved_by="mallory",
                resolved_at=when,
                outcome="called_back",
            )
        )
        conn.execute(  # and makes another look routine
            update(escalations_table).where(escalations_table.c.id == other.id).values(category="duplicate")
        )

    for _ in range(3):  # the console re-reads the queue every few seconds
        queue = {s.id: s for s in store.queue()}
    shown = queue[emergency.id]
    assert shown.tampered and shown.status is EscalationStatus.OPEN and shown.urgency is Urgency.URGENT
    assert shown.category is EscalationCategory.EMERGENCY and shown.resolved_by is None
    assert queue[other.id].tampered and queue[other.id].urgency is Urgency.URGENT
    assert queue[other.id].category is EscalationCategory.SYSTEM_ERROR  # not a category: not believed
    assert set(list(queue)[:2]) == {emergency.id, other.id}  # at the top, as open and urgent

    # retention does not delete what only claims to be resolved
    assert store.purge_resolved(clock.now + timedelta(days=60)).deleted == 0
    opened = store.get(emergency.id, "jdoe")
    assert opened.tampered and opened.callback_number == CALLBACK  # the front desk can still call back

    assert alerts(backend, keyring, clock) == ["record-tampered", "record-tampered"]  # once per row
    raised = [e for e in events(backend, keyring) if e.get("alert") == "record-tampered"]
    assert sorted(e["resource_ids"][0] for e in raised) == sorted([str(emergency.id), str(other.id)])
    assert all(e["error"] == "BadRowMac" and e["purpose"] == "escalation" for e in raised)
    assert CALLBACK not in repr(raised) and "mallory" not in repr(raised)

    # a person takes it on: the claim writes what was shown, under a fresh tag
    claimed = store.claim(emergency.id, "jdoe")
    assert not claimed.tampered and claimed.status is EscalationStatus.CLAIMED
    store.resolve(emergency.id, "jdoe", ResolutionOutcome.CALLED_BACK)
    assert not {s.id: s for s in store.queue()}[emergency.id].tampered


def test_a_correct_row_round_trips_also_under_a_rotated_key(
    backend: Backend, clock: Clock, raw: Engine, make_keyring: Callable[..., Keyring]
) -> None:
    old = make_keyring("ka")
    with EscalationStore.open(backend.url, old, clock=clock) as first:
        created = first.create(
            category=EscalationCategory.CRISIS, session_id=uuid4(), callback_number=CALLBACK
        )
        assert first.queue() == [created.summary()] and not created.tampered
    rotated = Keyring({**old.keys, "kb": make_keyring("kb").keys["kb"]}, "kb")
    with EscalationStore.open(backend.url, rotated, clock=clock) as store:
        assert store.get(created.id, "jdoe") == created  # tagged under ka, still verifies
        store.claim(created.id, "jdoe")
        assert not store.queue()[0].tampered
    with raw.connect() as conn:
        row = conn.execute(select(escalations_table)).one()
    assert row.mac_key_id == "kb"  # re-tagged under the active key at its next write
    assert ESCALATION_SEAL.check(rotated, row._mapping) is Verdict.OK
    assert ESCALATION_SEAL.check(make_keyring("kc"), row._mapping) is Verdict.UNKNOWN_KEY


def test_rows_from_before_the_tags_are_tagged_once_and_audited(
    store: EscalationStore, backend: Backend, keyring: Keyring, clock: Clock, raw: Engine
) -> None:
    created = store.create(category=EscalationCategory.EMERGENCY, session_id=uuid4())
    with raw.begin() as conn:  # the table as it was before this change
        conn.execute(text("ALTER TABLE escalations DROP COLUMN mac"))
        conn.execute(text("ALTER TABLE escalations DROP COLUMN mac_key_id"))
    for _ in range(2):  # a second start tags nothing more
        with EscalationStore.open(backend.url, keyring, clock=clock) as upgraded:
            assert not upgraded.queue()[0].tampered
    seals = [e for e in events(backend, keyring) if e["action"] == "record.seal"]
    assert [(e["resource_ids"], e["event_count"]) for e in seals] == [([str(created.id)], 1)]
    with raw.begin() as conn:  # afterwards, a row without a tag is not believed
        conn.execute(text("UPDATE escalations SET mac = NULL"))
    assert store.queue()[0].tampered
