"""The escalation store on SQLite and a real PostgreSQL: queue order, encryption at rest, key rotation,
transitions and refusals, audited access, retention, and failing closed when the audit write fails."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, delete, select, update

from voice_agent.audit import AuditTrail, Keyring
from voice_agent.audit.store import head_table
from voice_agent.escalations import (
    Escalation,
    EscalationCategory,
    EscalationConflict,
    EscalationNotFound,
    EscalationStatus,
    EscalationStore,
    EscalationUnreadable,
    EscalationWriteError,
    InvalidEscalation,
    ResolutionOutcome,
    Urgency,
)
from voice_agent.escalations import store as store_module
from voice_agent.escalations.store import escalations_table

if TYPE_CHECKING:
    from tests.backends import Backend, Clock

CANARY_PATIENT = "zqpatcanary9d41"
CANARY_PHONE = "+19995550123"
PHONE_SPELLINGS = ("+19995550123", "19995550123", "9995550123", "999-555-0123", "(999) 555-0123")


def audit_events(backend: Backend, keyring: Keyring) -> list[dict[str, Any]]:
    with AuditTrail.open(backend.url, keyring) as trail:
        report = trail.verify()
        assert report.ok, report.lines()
        return [item["event"] for item in trail.export()]


def escalation_events(backend: Backend, keyring: Keyring) -> list[dict[str, Any]]:
    return [e for e in audit_events(backend, keyring) if e["action"].startswith("escalation.")]


def new(store: EscalationStore, category: str = "caller_request", **fields: Any) -> Escalation:
    fields.setdefault("session_id", uuid4())
    return store.create(category=EscalationCategory(category), **fields)


def raw_rows(raw: Engine) -> list[Any]:
    with raw.connect() as conn:
        return list(conn.execute(select(escalations_table)))


# ---------------------------------------------------------------------- create and queue


def test_create_returns_what_get_reads_back(store: EscalationStore) -> None:
    session = uuid4()
    created = store.create(
        category=EscalationCategory.MEDICAL_QUESTION,
        session_id=session,
        patient_id="pat-1",
        callback_number="+15551230001",
    )
    assert (created.status, created.urgency, created.session_id) == (
        EscalationStatus.OPEN,
        Urgency.NORMAL,
        session,
    )
    assert store.get(created.id, "jdoe") == created


def test_emergency_is_made_urgent_whatever_was_asked(store: EscalationStore) -> None:
    created = new(store, "emergency", urgency=Urgency.NORMAL)
    assert created.urgency is Urgency.URGENT
    assert new(store, "crisis").urgency is Urgency.URGENT
    assert new(store, "verification_failed", urgency=Urgency.URGENT).urgency is Urgency.URGENT


def test_invalid_input_is_refused_without_quoting_it(store: EscalationStore, raw: Engine) -> None:
    with pytest.raises(InvalidEscalation) as caught:
        new(store, callback_number="call 999 555 0123 after five")
    assert "callback_number" in str(caught.value) and "999" not in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(InvalidEscalation):
        new(store, patient_id="Jane Doe")
    with pytest.raises(InvalidEscalation, match="staff"):
        store.get(uuid4(), "Jane Doe")
    assert raw_rows(raw) == []


def test_queue_puts_active_first_then_urgent_then_oldest(store: EscalationStore, clock: Clock) -> None:
    made: dict[str, UUID] = {}

    def at(name: str, category: str, **fields: Any) -> None:
        made[name] = new(store, category, **fields).id
        clock.advance(minutes=1)

    at("resolved_urgent_oldest", "emergency")
    at("normal_old", "cannot_complete")
    at("urgent_claimed", "caller_request", urgency=Urgency.URGENT)
    at("crisis", "crisis")
    at("normal_claimed", "medical_question")
    at("normal_new", "system_error")
    at("emergency_newest", "emergency")
    store.claim(made["resolved_urgent_oldest"], "jdoe")
    store.resolve(made["resolved_urgent_oldest"], "jdoe", ResolutionOutcome.CALLED_BACK)
    store.claim(made["urgent_claimed"], "jdoe")
    store.claim(made["normal_claimed"], "asmith")

    queue = store.queue()
    assert [entry.id for entry in queue] == [
        made[name]
        for name in (
            "urgent_claimed",
            "crisis",
            "emergency_newest",
            "normal_old",
            "normal_claimed",
            "normal_new",
            "resolved_urgent_oldest",
        )
    ]
    assert [entry.id for entry in store.queue(limit=2)] == [made["urgent_claimed"], made["crisis"]]
    dumped = json.dumps([entry.model_dump(mode="json") for entry in queue])
    assert "patient_id" not in dumped and "callback_number" not in dumped
    with pytest.raises(ValueError):
        store.queue(limit=0)


# ---------------------------------------------------------------------- encryption at rest


def test_the_database_never_holds_the_phi_in_plaintext(
    backend: Backend, make_keyring: Callable[..., Keyring], clock: Clock, raw: Engine
) -> None:
    keyring = make_keyring("kvisiblekeyid")  # key ids are plaintext: the scan's positive control
    with EscalationStore.open(backend.url, keyring, clock=clock) as store:
        created = new(store, "medical_question", patient_id=CANARY_PATIENT, callback_number=CANARY_PHONE)
        store.get(created.id, "jdoe")
        store.claim(created.id, "jdoe")
        assert store.get(created.id, "jdoe").callback_number == CANARY_PHONE

    rows = raw_rows(raw)
    assert len(rows) == 1
    dumped = repr([tuple(row) for row in rows])
    assert "kvisiblekeyid" in dumped and "medical_question" in dumped
    for secret in (CANARY_PATIENT, *PHONE_SPELLINGS):
        assert secret not in dumped

    on_disk = backend.raw_bytes()
    assert b"kvisiblekeyid" in on_disk and b"medical_question" in on_disk  # the scan sees plaintext
    for secret in (CANARY_PATIENT, *PHONE_SPELLINGS):
        assert secret.encode() not in on_disk
        assert secret.encode("utf-16-le") not in on_disk


def test_sealed_phi_does_not_reveal_whether_a_patient_was_verified(
    store: EscalationStore, raw: Engine
) -> None:
    new(store)
    new(store, patient_id="p" * 64, callback_number="+123456789012345")
    assert len({len(row.ciphertext) for row in raw_rows(raw)}) == 1


def test_ciphertext_moved_to_another_escalation_does_not_decrypt(
    backend: Backend, keyring: Keyring, store: EscalationStore, raw: Engine
) -> None:
    a = new(store, patient_id="pat-a", callback_number="+15551230001")
    b = new(store, patient_id="pat-b", callback_number="+15551230002")
    with raw.begin() as conn:
        sealed = conn.execute(
            select(
                escalations_table.c.key_id, escalations_table.c.nonce, escalations_table.c.ciphertext
            ).where(escalations_table.c.id == a.id)
        ).one()
        conn.execute(
            update(escalations_table).where(escalations_table.c.id == b.id).values(**sealed._mapping)
        )
    with pytest.raises(EscalationUnreadable):
        store.get(b.id, "jdoe")
    assert store.get(a.id, "jdoe").patient_id == "pat-a"
    views = [e for e in escalation_events(backend, keyring) if e["action"] == "escalation.view"]
    assert [(e["outcome"], e.get("error")) for e in views] == [
        ("failure", "DecryptionError"),
        ("success", None),
    ]


def test_rotated_keyring_reads_old_escalations_and_seals_new_ones_with_the_new_key(
    backend: Backend, make_keyring: Callable[..., Keyring], raw: Engine
) -> None:
    old = make_keyring("ka")
    with EscalationStore.open(backend.url, old) as store:
        first = new(store, patient_id="pat-old", callback_number="+15551230001")
    rotated = Keyring({**old.keys, **make_keyring("kb").keys}, "kb")
    with EscalationStore.open(backend.url, rotated) as store:
        assert store.get(first.id, "jdoe").callback_number == "+15551230001"
        second = new(store, patient_id="pat-new", callback_number="+15551230002")
        assert store.get(second.id, "jdoe").patient_id == "pat-new"
    assert {row.id: row.key_id for row in raw_rows(raw)} == {first.id: "ka", second.id: "kb"}

    only_new = Keyring({"kb": rotated.keys["kb"]}, "kb")
    with EscalationStore.open(backend.url, only_new) as store:
        assert store.get(second.id, "jdoe").callback_number == "+15551230002"
        with pytest.raises(EscalationUnreadable, match="keyring"):
            store.get(first.id, "jdoe")


# ---------------------------------------------------------------------- transitions


def test_claim_then_resolve(store: EscalationStore, clock: Clock) -> None:
    created = new(store)
    clock.advance(minutes=3)
    claimed = store.claim(created.id, "jdoe")
    assert (claimed.status, claimed.claimed_by, claimed.claimed_at) == (
        EscalationStatus.CLAIMED,
        "jdoe",
        clock.now,
    )
    assert store.claim(created.id, "jdoe") == claimed  # one's own claim again: no change
    clock.advance(minutes=5)
    resolved = store.resolve(created.id, "jdoe", ResolutionOutcome.BOOKED)
    assert (resolved.status, resolved.resolved_by, resolved.resolved_at, resolved.outcome) == (
        EscalationStatus.RESOLVED,
        "jdoe",
        clock.now,
        ResolutionOutcome.BOOKED,
    )
    assert store.get(created.id, "asmith").summary() == resolved


def test_refused_transitions_change_nothing(store: EscalationStore) -> None:
    created = new(store)
    with pytest.raises(EscalationConflict, match="claim the escalation before"):
        store.resolve(created.id, "jdoe", ResolutionOutcome.CALLED_BACK)
    store.claim(created.id, "jdoe")
    with pytest.raises(EscalationConflict, match="another staff member") as caught:
        store.claim(created.id, "asmith")
    assert caught.value.claimed_by == "jdoe" and caught.value.status is EscalationStatus.CLAIMED
    with pytest.raises(EscalationConflict, match="another staff member"):
        store.resolve(created.id, "asmith", ResolutionOutcome.CALLED_BACK)
    store.resolve(created.id, "jdoe", ResolutionOutcome.NO_ANSWER)
    with pytest.raises(EscalationConflict, match="already resolved"):
        store.resolve(created.id, "jdoe", ResolutionOutcome.CALLED_BACK)
    with pytest.raises(EscalationConflict, match="already resolved"):
        store.claim(created.id, "asmith")
    final = store.get(created.id, "jdoe")
    assert (final.status, final.claimed_by, final.resolved_by, final.outcome) == (
        EscalationStatus.RESOLVED,
        "jdoe",
        "jdoe",
        ResolutionOutcome.NO_ANSWER,
    )
    with pytest.raises(EscalationNotFound):
        store.claim(uuid4(), "jdoe")
    with pytest.raises(EscalationNotFound):
        store.get(uuid4(), "jdoe")
    with pytest.raises(InvalidEscalation, match="outcome"):
        store.resolve(created.id, "jdoe", "fixed it")  # type: ignore[arg-type]


def test_concurrent_claims_have_one_winner(store: EscalationStore) -> None:
    created = new(store)
    results: dict[str, str] = {}
    start = threading.Barrier(6)

    def claim(user: str) -> None:
        start.wait()
        try:
            store.claim(created.id, user)
            results[user] = "won"
        except EscalationConflict:
            results[user] = "refused"

    threads = [threading.Thread(target=claim, args=(f"staff{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    winners = [user for user, result in results.items() if result == "won"]
    assert len(results) == 6 and len(winners) == 1
    assert store.queue()[0].claimed_by == winners[0]


# ---------------------------------------------------------------------- audit


def test_every_access_is_audited_with_its_actor_and_no_phi(
    backend: Backend, keyring: Keyring, store: EscalationStore
) -> None:
    session = uuid4()
    created = store.create(
        category=EscalationCategory.VERIFICATION_FAILED,
        session_id=session,
        patient_id=CANARY_PATIENT,
        callback_number=CANARY_PHONE,
    )
    store.queue()  # no PHI read: not audited
    store.get(created.id, "jdoe")
    store.claim(created.id, "jdoe")
    with pytest.raises(EscalationConflict):
        store.claim(created.id, "asmith")
    store.resolve(created.id, "jdoe", ResolutionOutcome.LEFT_MESSAGE)
    missing = uuid4()
    with pytest.raises(EscalationNotFound):
        store.get(missing, "asmith")

    events = escalation_events(backend, keyring)
    assert [(e["action"], e["actor"], e["outcome"]) for e in events] == [
        ("escalation.create", {"kind": "service", "id": "voice-agent"}, "success"),
        ("escalation.view", {"kind": "staff", "id": "jdoe"}, "success"),
        ("escalation.claim", {"kind": "staff", "id": "jdoe"}, "success"),
        ("escalation.claim", {"kind": "staff", "id": "asmith"}, "conflict"),
        ("escalation.resolve", {"kind": "staff", "id": "jdoe"}, "success"),
        ("escalation.view", {"kind": "staff", "id": "asmith"}, "not-found"),
    ]
    assert all(e["purpose"] == "escalation" for e in events)
    assert [e["resource_ids"] for e in events] == [[str(created.id)]] * 5 + [[str(missing)]]
    assert [e.get("session_id") for e in events] == [str(session)] * 5 + [None]
    dumped = json.dumps(audit_events(backend, keyring))
    for secret in (CANARY_PATIENT, *PHONE_SPELLINGS):
        assert secret not in dumped


def test_a_failed_audit_write_leaves_no_escalation(
    backend: Backend, store: EscalationStore, raw: Engine
) -> None:
    with raw.begin() as conn:
        conn.execute(delete(head_table))  # the trail now refuses every append
    with pytest.raises(EscalationWriteError, match="nothing was changed"):
        new(store, patient_id=CANARY_PATIENT, callback_number=CANARY_PHONE)
    assert raw_rows(raw) == []


def test_an_append_that_fails_after_the_insert_rolls_the_insert_back(
    store: EscalationStore, raw: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The row is inserted before its event is chained; both are one transaction."""
    kept = new(store, patient_id="pat-1", callback_number="+15551230001")

    def refuse(*_args: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(AuditTrail, "_append_locked", refuse)
    with pytest.raises(EscalationWriteError, match="OSError"):
        new(store, callback_number="+15551230002")
    with pytest.raises(EscalationWriteError):  # no PHI is handed out without its view event
        store.get(kept.id, "jdoe")
    with pytest.raises(EscalationWriteError):
        store.claim(kept.id, "jdoe")
    with pytest.raises(EscalationWriteError):
        store.purge_resolved(kept.created_at + timedelta(days=400))
    monkeypatch.undo()
    assert [(row.id, row.status) for row in raw_rows(raw)] == [(kept.id, "open")]


# ---------------------------------------------------------------------- retention


def test_purge_deletes_only_resolved_escalations_past_retention_and_is_audited(
    backend: Backend, keyring: Keyring, store: EscalationStore, clock: Clock, raw: Engine
) -> None:
    start = clock.now
    early = new(store, callback_number="+15551230001")
    late = new(store, callback_number="+15551230002")
    still_open = new(store, "emergency", callback_number="+15551230003")
    claimed = new(store, callback_number="+15551230004")
    for item in (early, late, claimed):
        store.claim(item.id, "jdoe")
    clock.advance(days=1)
    store.resolve(early.id, "jdoe", ResolutionOutcome.CALLED_BACK)
    clock.advance(days=20)
    store.resolve(late.id, "jdoe", ResolutionOutcome.DUPLICATE)

    report = store.purge_resolved(start + timedelta(days=40))  # default 30 days: cutoff is day 10
    assert (report.deleted, report.cutoff) == (1, start + timedelta(days=10))
    assert {row.id for row in raw_rows(raw)} == {late.id, still_open.id, claimed.id}
    with pytest.raises(EscalationNotFound):
        store.get(early.id, "jdoe")

    assert store.purge_resolved(start + timedelta(days=40)).deleted == 0  # audited all the same
    assert store.purge_resolved(start + timedelta(days=400), retention_days=7).deleted == 1
    assert {row.id for row in raw_rows(raw)} == {still_open.id, claimed.id}  # never an unresolved one

    deletes = [e for e in escalation_events(backend, keyring) if e["action"] == "escalation.delete"]
    assert [(e["event_count"], e["resource_ids"], e["range_end"]) for e in deletes] == [
        (1, [str(early.id)], "2025-03-13T09:00:00Z"),
        (0, [], "2025-03-13T09:00:00Z"),
        (1, [str(late.id)], "2026-03-31T09:00:00Z"),
    ]
    assert all(e["actor"] == {"kind": "service", "id": "voice-agent"} for e in deletes)
    with pytest.raises(ValueError):
        store.purge_resolved(clock.now, retention_days=0)


def test_purge_works_in_audited_batches(
    backend: Backend, keyring: Keyring, store: EscalationStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "PURGE_BATCH", 2)
    for _ in range(5):
        item = new(store)
        store.claim(item.id, "jdoe")
        store.resolve(item.id, "jdoe", ResolutionOutcome.RESOLVED_OTHER)
    report = store.purge_resolved(clock.now + timedelta(days=31))
    assert (report.deleted, report.audit_events) == (5, 3)
    deletes = [e for e in escalation_events(backend, keyring) if e["action"] == "escalation.delete"]
    assert [e["event_count"] for e in deletes] == [2, 2, 1]
    assert store.queue() == []


def test_a_purged_escalation_leaves_no_ciphertext_in_the_sqlite_files(
    backend: Backend, store: EscalationStore, clock: Clock, raw: Engine
) -> None:
    if backend.sqlite_path is None:
        pytest.skip("PostgreSQL keeps dead tuples until VACUUM reuses the page (a documented limit)")
    gone = new(store, patient_id="pat-gone", callback_number="+15551230001")
    kept = new(store, patient_id="pat-kept", callback_number="+15551230002")
    blobs = {row.id: bytes(row.ciphertext) for row in raw_rows(raw)}
    raw.dispose()
    store.claim(gone.id, "jdoe")
    store.resolve(gone.id, "jdoe", ResolutionOutcome.CALLED_BACK)
    assert blobs[gone.id] in backend.raw_bytes()
    assert store.purge_resolved(clock.now + timedelta(days=31)).deleted == 1
    on_disk = backend.raw_bytes()
    assert blobs[kept.id] in on_disk  # positive control: the scan finds a live row's ciphertext
    assert blobs[gone.id] not in on_disk


# ---------------------------------------------------------------------- wiring


def test_a_plain_postgresql_url_and_a_reopened_store_work(backend: Backend, keyring: Keyring) -> None:
    url = backend.url.replace("postgresql+psycopg://", "postgresql://")
    with EscalationStore.open(url, keyring) as store:
        created = new(store)
    with EscalationStore.open(url, keyring) as again:  # tables exist: created once, reused
        assert [entry.id for entry in again.queue()] == [created.id]
