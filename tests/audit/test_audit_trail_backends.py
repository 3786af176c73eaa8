"""The audit trail on SQLite and on a real PostgreSQL server: tamper evidence, encryption at rest, key
rotation, purge, export ranges and concurrent writers."""

from __future__ import annotations

import base64
import itertools
import os
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from sqlalchemy import Connection, Engine, delete, insert, select, update

from harness.postgres import postgres_server_fixture
from tests.backends import Backend, Clock, new_keyring
from tests.backends import backend as backend  # fixtures: used by parameter name
from tests.backends import raw as raw
from voice_agent.audit import (
    Actor,
    AuditEvent,
    AuditIntegrityError,
    AuditKeyRequired,
    AuditTrail,
    Keyring,
    VerifyReport,
)
from voice_agent.audit.store import GENESIS_HASH, chain_hash, events_table, head_table

postgres_server = postgres_server_fixture()

SERVICE = Actor(kind="service", id="voice-agent")
T0 = datetime(2020, 1, 6, 9, 0, tzinfo=UTC)


@pytest.fixture
def keyring() -> Keyring:
    return new_keyring("ka")


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def trail(backend: Backend, keyring: Keyring, clock: Clock) -> Iterator[AuditTrail]:
    with AuditTrail.open(backend.url, keyring, clock=clock) as opened:
        yield opened


def event(n: int, **changes: Any) -> AuditEvent:
    fields: dict[str, Any] = {
        "actor": SERVICE,
        "purpose": "book",
        "action": "fhir.read",
        "outcome": "success",
        "resource_type": "Appointment",
        "resource_ids": (f"appt-{n}",),
    }
    fields.update(changes)
    return AuditEvent.now(**fields)


def fill(trail: AuditTrail, count: int, clock: Clock | None = None, start: int = 1) -> list[int]:
    seqs = []
    for n in range(start, start + count):
        seqs.append(trail.append(event(n)))
        if clock:
            clock.advance(minutes=1)
    return seqs


def named(report: VerifyReport) -> dict[int, set[str]]:
    kinds: dict[int, set[str]] = {}
    for problem in report.problems:
        for seq in problem.seqs:
            kinds.setdefault(seq, set()).add(problem.kind)
    return kinds


def row(conn: Connection, seq: int) -> Any:
    return conn.execute(select(events_table).where(events_table.c.seq == seq)).one()


# ---------------------------------------------------------------------- basics


def test_appends_number_the_chain_and_verify_passes(trail: AuditTrail, clock: Clock) -> None:
    assert fill(trail, 5, clock) == [1, 2, 3, 4, 5]
    report = trail.verify()
    assert report.ok, report.lines()
    assert (report.checked, report.first_seq, report.last_seq, report.head_seq) == (5, 1, 5, 5)
    exported = list(trail.export())
    assert [item["seq"] for item in exported] == [1, 2, 3, 4, 5]
    assert exported[0]["prev_hash"] == GENESIS_HASH
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(exported))
    assert exported[2]["event"]["resource_ids"] == ["appt-3"]


def test_an_empty_trail_verifies(trail: AuditTrail) -> None:
    report = trail.verify()
    assert report.ok and report.checked == 0


def test_verify_without_the_key_checks_the_chain(backend: Backend, trail: AuditTrail, raw: Engine) -> None:
    fill(trail, 4)
    with AuditTrail.open(backend.url, None) as keyless:
        report = keyless.verify()
        assert report.ok and not report.keyed
        assert any("no key" in note for note in report.notes)
        with pytest.raises(AuditKeyRequired):
            keyless.append(event(9))
        with pytest.raises(AuditKeyRequired):
            list(keyless.export())
        with raw.begin() as conn:
            value = row(conn, 2).ciphertext
            conn.execute(
                update(events_table)
                .where(events_table.c.seq == 2)
                .values(ciphertext=bytes([value[0] ^ 0x01]) + value[1:])
            )
        assert named(keyless.verify()) == {2: {"altered"}}


def test_keyless_verify_of_a_database_without_a_trail(tmp_path: Path) -> None:
    with AuditTrail.open(f"sqlite:///{tmp_path / 'none.db'}", None) as keyless:
        report = keyless.verify()
    assert not report.ok
    assert report.problems[0].kind == "missing-trail"


# ---------------------------------------------------------------------- tampering


def _flip_ciphertext(conn: Connection, seq: int) -> None:
    value = row(conn, seq).ciphertext
    conn.execute(
        update(events_table)
        .where(events_table.c.seq == seq)
        .values(ciphertext=value[:5] + bytes([value[5] ^ 0x80]) + value[6:])
    )


def _rewrite(conn: Connection, at: int, **values: Any) -> None:
    conn.execute(update(events_table).where(events_table.c.seq == at).values(**values))


def _recomputed(conn: Connection, seq: int, **changes: Any) -> dict[str, Any]:
    """Row values with ``changes`` applied and the hash recomputed, as a forger without the key would."""
    values = dict(row(conn, seq)._mapping) | changes
    recorded_at = values["recorded_at"].replace(tzinfo=UTC)
    values["hash"] = chain_hash(
        values["seq"],
        recorded_at,
        values["key_id"],
        values["nonce"],
        values["ciphertext"],
        values["prev_hash"],
    )
    return values


def tamper_ciphertext(conn: Connection) -> None:
    _flip_ciphertext(conn, 4)


def tamper_recorded_at(conn: Connection) -> None:
    _rewrite(conn, 4, recorded_at=row(conn, 4).recorded_at + timedelta(seconds=1))


def tamper_key_id(conn: Connection) -> None:
    _rewrite(conn, 4, key_id="kz")


def tamper_prev_hash(conn: Connection) -> None:
    _rewrite(conn, 4, prev_hash="f" * 64)


def tamper_delete_middle(conn: Connection) -> None:
    conn.execute(delete(events_table).where(events_table.c.seq == 4))


def tamper_delete_several(conn: Connection) -> None:
    conn.execute(delete(events_table).where(events_table.c.seq.in_([3, 4, 5])))


def tamper_delete_oldest(conn: Connection) -> None:
    conn.execute(delete(events_table).where(events_table.c.seq <= 2))


def tamper_delete_newest(conn: Connection) -> None:
    conn.execute(delete(events_table).where(events_table.c.seq >= 7))


def tamper_delete_everything(conn: Connection) -> None:
    conn.execute(delete(events_table))


def tamper_swap_payloads(conn: Connection) -> None:
    a, b = row(conn, 3), row(conn, 6)
    _rewrite(conn, 3, key_id=b.key_id, nonce=b.nonce, ciphertext=b.ciphertext)
    _rewrite(conn, 6, key_id=a.key_id, nonce=a.nonce, ciphertext=a.ciphertext)


def tamper_reorder(conn: Connection) -> None:
    _rewrite(conn, 3, seq=-3)
    _rewrite(conn, 6, seq=3)
    _rewrite(conn, -3, seq=6)


def tamper_reorder_adjacent(conn: Connection) -> None:
    _rewrite(conn, 4, seq=-4)
    _rewrite(conn, 5, seq=4)
    _rewrite(conn, -4, seq=5)


def tamper_insert_forged_after_head(conn: Connection) -> None:
    last = row(conn, 8)
    forged = {
        "seq": 9,
        "recorded_at": last.recorded_at + timedelta(seconds=1),
        "key_id": last.key_id,
        "nonce": os.urandom(12),
        "ciphertext": os.urandom(120),
        "prev_hash": last.hash,
    }
    conn.execute(insert(events_table).values(**_forge(forged)))


def tamper_insert_forged_in_place(conn: Connection) -> None:
    """Replace seq 5 with a forgery that links to seq 4 (hash recomputed); seq 6 no longer links to it."""
    _rewrite(conn, 5, **_recomputed(conn, 5, ciphertext=os.urandom(100)))


def tamper_rewrite_chain_and_head(conn: Connection) -> None:
    """Change seq 4, recompute every later hash and the head's: only the key can tell."""
    prev = row(conn, 3).hash
    for seq in range(4, 9):
        changes: dict[str, Any] = {"prev_hash": prev}
        if seq == 4:
            changes["ciphertext"] = os.urandom(len(row(conn, 4).ciphertext))
        values = _recomputed(conn, seq, **changes)
        _rewrite(conn, seq, **values)
        prev = values["hash"]
    conn.execute(update(head_table).values(hash=prev))


def tamper_truncate_and_rewind_head(conn: Connection) -> None:
    conn.execute(delete(events_table).where(events_table.c.seq >= 7))
    conn.execute(update(head_table).values(seq=6, hash=row(conn, 6).hash))


def _forge(values: dict[str, Any]) -> dict[str, Any]:
    values["hash"] = chain_hash(
        values["seq"],
        values["recorded_at"].replace(tzinfo=UTC),
        values["key_id"],
        values["nonce"],
        values["ciphertext"],
        values["prev_hash"],
    )
    return values


@dataclass(frozen=True)
class Tamper:
    apply: Callable[[Connection], None]
    keyed: dict[int, set[str]]
    #: What a verify without the key names (None: not detectable without the key, by design).
    keyless: dict[int, set[str]] | None
    head_problem: bool = False


TAMPERING = {
    "ciphertext-byte": Tamper(tamper_ciphertext, {4: {"altered"}}, {4: {"altered"}}),
    "recorded-at": Tamper(tamper_recorded_at, {4: {"altered"}}, {4: {"altered"}}),
    "key-id": Tamper(tamper_key_id, {4: {"altered"}}, {4: {"altered"}}),
    "prev-hash": Tamper(tamper_prev_hash, {4: {"altered"}}, {4: {"altered"}}),
    "delete-middle": Tamper(tamper_delete_middle, {4: {"missing"}}, {4: {"missing"}}),
    "delete-several": Tamper(
        tamper_delete_several, {n: {"missing"} for n in (3, 4, 5)}, {n: {"missing"} for n in (3, 4, 5)}
    ),
    "delete-oldest": Tamper(
        tamper_delete_oldest, {1: {"missing"}, 2: {"missing"}}, {1: {"missing"}, 2: {"missing"}}
    ),
    "delete-newest": Tamper(
        tamper_delete_newest, {7: {"truncated"}, 8: {"truncated"}}, {7: {"truncated"}, 8: {"truncated"}}
    ),
    "delete-everything": Tamper(
        tamper_delete_everything,
        {n: {"truncated"} for n in range(1, 9)},
        {n: {"truncated"} for n in range(1, 9)},
    ),
    "swap-payloads": Tamper(
        tamper_swap_payloads, {3: {"altered"}, 6: {"altered"}}, {3: {"altered"}, 6: {"altered"}}
    ),
    "reorder": Tamper(
        tamper_reorder, {3: {"reordered"}, 6: {"reordered"}}, {3: {"reordered"}, 6: {"reordered"}}
    ),
    "reorder-adjacent": Tamper(
        tamper_reorder_adjacent, {4: {"reordered"}, 5: {"reordered"}}, {4: {"reordered"}, 5: {"reordered"}}
    ),
    "insert-after-head": Tamper(tamper_insert_forged_after_head, {9: {"inserted"}}, {9: {"inserted"}}),
    "forge-in-place": Tamper(
        tamper_insert_forged_in_place,
        {5: {"relinked", "undecryptable"}, 6: {"relinked"}},
        {5: {"relinked"}, 6: {"relinked"}},
    ),
    # seq 4's ciphertext is a forgery; 5-8 still decrypt only if linked to the original seq 4 (AAD)
    "rewrite-chain-and-head": Tamper(
        tamper_rewrite_chain_and_head, {n: {"undecryptable"} for n in range(4, 9)}, None, head_problem=True
    ),
    "truncate-and-rewind-head": Tamper(tamper_truncate_and_rewind_head, {}, None, head_problem=True),
}


@pytest.mark.parametrize("name", list(TAMPERING))
def test_every_kind_of_tampering_is_detected_and_named(
    name: str, backend: Backend, trail: AuditTrail, raw: Engine, clock: Clock
) -> None:
    fill(trail, 8, clock)
    assert trail.verify().ok
    tamper = TAMPERING[name]
    with raw.begin() as conn:
        tamper.apply(conn)

    report = trail.verify()
    assert not report.ok
    assert named(report) == tamper.keyed, report.lines()
    assert any(p.kind == "head" for p in report.problems) == tamper.head_problem, report.lines()
    printed = report.lines()
    for problem in report.problems:
        if problem.seq is not None:
            assert f"  {problem}" in printed and str(problem).startswith(f"seq {problem.seq}")

    with AuditTrail.open(backend.url, None) as keyless:
        chain_only = keyless.verify()
    if tamper.keyless is None:
        assert chain_only.ok  # by design: a consistent rewrite needs the key (GCM tags, head HMAC) to catch
    else:
        assert named(chain_only) == tamper.keyless, chain_only.lines()


def test_a_forged_head_stops_further_writes(trail: AuditTrail, raw: Engine) -> None:
    """Re-MACing a forged head on the next append would launder a truncation: append refuses instead."""
    fill(trail, 3)
    with raw.begin() as conn:
        conn.execute(delete(events_table).where(events_table.c.seq == 3))
        conn.execute(update(head_table).values(seq=2, hash=row(conn, 2).hash))
    with pytest.raises(AuditIntegrityError, match="HMAC"):
        trail.append(event(4))


def test_a_deleted_head_is_reported_and_stops_writes(
    backend: Backend, trail: AuditTrail, raw: Engine
) -> None:
    fill(trail, 3)
    with raw.begin() as conn:
        conn.execute(delete(head_table))
    with AuditTrail.open(backend.url, new_keyring("ka")) as reopened:  # start-up does not paper over it
        assert reopened.head() is None
    report = trail.verify()
    assert [p.kind for p in report.problems] == ["head"], report.lines()
    with pytest.raises(AuditIntegrityError, match="missing"):
        trail.append(event(4))


def test_a_wrong_key_is_reported_for_every_record(backend: Backend, trail: AuditTrail) -> None:
    fill(trail, 3)
    with AuditTrail.open(backend.url, new_keyring("ka")) as impostor:
        report = impostor.verify()
    assert named(report) == {1: {"undecryptable"}, 2: {"undecryptable"}, 3: {"undecryptable"}}
    assert any(p.kind == "head" for p in report.problems)


# ---------------------------------------------------------------------- encryption at rest

CANARY_ID = "zqcanary7f3a9c1e"


def _raw_bytes(backend: Backend) -> bytes:
    if backend.sqlite_path is not None:
        files = [
            p for p in backend.sqlite_path.parent.iterdir() if p.name.startswith(backend.sqlite_path.name)
        ]
    else:
        assert backend.server is not None
        backend.server.checkpoint()
        files = [p for p in backend.server.data_dir.rglob("*") if p.is_file()]
    return b"".join(p.read_bytes() for p in files)


def test_the_database_holds_no_plaintext_of_the_events(backend: Backend, raw: Engine, clock: Clock) -> None:
    keyring = new_keyring("kvisiblekeyid")  # key ids are plaintext: the positive control for the scan
    session = uuid4()
    with AuditTrail.open(backend.url, keyring, clock=clock) as trail:
        trail.append(event(1, resource_type="Patient", resource_ids=(CANARY_ID,), session_id=session))
        trail.append(event(2, action="fhir.search", purpose="verify-identity", outcome="denied"))
        exported = list(trail.export())

    assert exported[0]["event"]["resource_ids"] == [CANARY_ID]
    assert exported[0]["event"]["session_id"] == str(session)

    with raw.connect() as conn:
        rows = [repr(tuple(r)) for r in conn.execute(select(events_table))] + [
            repr(tuple(r)) for r in conn.execute(select(head_table))
        ]
    dumped = "\n".join(rows)
    assert "kvisiblekeyid" in dumped
    for secret in (CANARY_ID, str(session), session.hex, "verify-identity", "Patient", "fhir.search"):
        assert secret not in dumped

    on_disk = _raw_bytes(backend)
    assert b"kvisiblekeyid" in on_disk  # the scan does see plaintext columns
    for secret in (CANARY_ID, str(session), "verify-identity", "fhir.search"):
        assert secret.encode() not in on_disk
    for key in keyring.keys.values():
        assert key not in on_disk and base64.b64encode(key) not in on_disk


# ---------------------------------------------------------------------- key rotation


def test_rotation_keeps_old_events_readable(backend: Backend, clock: Clock) -> None:
    old = new_keyring("ka")
    with AuditTrail.open(backend.url, old, clock=clock) as trail:
        fill(trail, 3, clock)
    rotated = Keyring({**old.keys, **new_keyring("kb").keys}, "kb")
    with AuditTrail.open(backend.url, rotated, clock=clock) as trail:
        fill(trail, 3, clock, start=4)
        report = trail.verify()
        assert report.ok, report.lines()
        exported = list(trail.export())
    assert [item["key_id"] for item in exported] == ["ka"] * 3 + ["kb"] * 3
    assert [item["event"]["resource_ids"][0] for item in exported] == [f"appt-{n}" for n in range(1, 7)]

    only_new = Keyring({"kb": rotated.keys["kb"]}, "kb")
    with AuditTrail.open(backend.url, only_new) as trail:
        assert named(trail.verify()) == {n: {"undecryptable"} for n in (1, 2, 3)}
    with AuditTrail.open(backend.url, old) as trail:
        report = trail.verify()
        assert named(report) == {n: {"undecryptable"} for n in (4, 5, 6)}
        assert any("not in the keyring" in p.detail for p in report.problems if p.kind == "head")


# ---------------------------------------------------------------------- purge


def test_purge_deletes_only_old_events_and_is_itself_audited(trail: AuditTrail, clock: Clock) -> None:
    fill(trail, 4, clock)  # early 2020
    clock.now = datetime(2026, 6, 1, tzinfo=UTC)
    fill(trail, 3, clock, start=5)
    report = trail.purge(datetime(2026, 6, 2, tzinfo=UTC), 6 * 366, SERVICE)
    assert (report.purged_count, report.purged_through_seq, report.event_seq) == (4, 4, 8)
    assert report.cutoff == datetime(2026, 6, 2, tzinfo=UTC) - timedelta(days=6 * 366)

    verified = trail.verify()
    assert verified.ok, verified.lines()
    assert (verified.anchor_seq, verified.first_seq, verified.last_seq) == (4, 5, 8)
    exported = list(trail.export())
    assert [item["seq"] for item in exported] == [5, 6, 7, 8]
    purge_event = exported[-1]["event"]
    assert purge_event["action"] == "audit.purge"
    assert purge_event["purpose"] == "audit-maintenance"
    assert purge_event["actor"] == {"kind": "service", "id": "voice-agent"}
    assert (purge_event["purged_count"], purge_event["purged_through_seq"]) == (4, 4)
    assert purge_event["anchor_hash"] == exported[0]["prev_hash"]

    again = trail.purge(datetime(2026, 6, 2, tzinfo=UTC), 6 * 366, SERVICE)
    assert (again.purged_count, again.purged_through_seq, again.event_seq) == (0, 4, 9)
    assert trail.append(event(10)) == 10
    assert trail.verify().ok


def test_purge_of_everything_leaves_a_verifiable_chain(trail: AuditTrail, clock: Clock) -> None:
    fill(trail, 3, clock)
    report = trail.purge(T0 + timedelta(days=400), 30, SERVICE)
    assert (report.purged_count, report.purged_through_seq, report.event_seq) == (3, 3, 4)
    verified = trail.verify()
    assert verified.ok and verified.checked == 1, verified.lines()


def test_purge_stops_at_the_first_recent_event(trail: AuditTrail, clock: Clock) -> None:
    """Only a prefix of the chain is purged, even if a later event carries an older timestamp."""
    fill(trail, 2, clock)
    clock.now = T0 + timedelta(days=100)
    fill(trail, 1, clock, start=3)
    clock.now = T0  # a clock that stepped back
    fill(trail, 1, clock, start=4)
    report = trail.purge(T0 + timedelta(days=110), 30, SERVICE)
    assert (report.purged_count, report.purged_through_seq) == (2, 2)
    assert trail.verify().ok


def test_purge_refuses_a_tampered_trail(trail: AuditTrail, raw: Engine, clock: Clock) -> None:
    fill(trail, 5, clock)
    with raw.begin() as conn:
        _flip_ciphertext(conn, 2)
    with pytest.raises(AuditIntegrityError, match="refusing to purge") as caught:
        trail.purge(T0 + timedelta(days=4000), 30, SERVICE)
    assert caught.value.report is not None and 2 in caught.value.report.problem_seqs
    with raw.connect() as conn:
        assert len(conn.execute(select(events_table.c.seq)).all()) == 5


def test_tampering_with_the_anchor_is_detected(trail: AuditTrail, raw: Engine, clock: Clock) -> None:
    fill(trail, 4, clock)
    clock.now = T0 + timedelta(days=100)
    fill(trail, 2, clock, start=5)
    trail.purge(T0 + timedelta(days=100), 30, SERVICE)
    assert trail.verify().ok
    with raw.begin() as conn:  # hide two more events by moving the anchor forward (no key, so no HMAC)
        conn.execute(delete(events_table).where(events_table.c.seq <= 6))
        conn.execute(update(head_table).values(anchor_seq=6, anchor_hash=row(conn, 7).prev_hash))
    report = trail.verify()
    assert {p.kind for p in report.problems} == {"head", "anchor"}, report.lines()


def test_deleting_the_oldest_survivors_after_a_purge_is_detected(
    trail: AuditTrail, raw: Engine, clock: Clock
) -> None:
    fill(trail, 3, clock)
    clock.now = T0 + timedelta(days=100)
    fill(trail, 3, clock, start=4)
    trail.purge(T0 + timedelta(days=100), 30, SERVICE)
    with raw.begin() as conn:
        conn.execute(delete(events_table).where(events_table.c.seq == 4))
    assert named(trail.verify()) == {4: {"missing"}}


# ---------------------------------------------------------------------- export


def test_export_respects_since_and_until(trail: AuditTrail, clock: Clock) -> None:
    for n in range(1, 6):
        trail.append(event(n))
        clock.advance(days=1)
    since, until = T0 + timedelta(days=1), T0 + timedelta(days=3)
    items = list(trail.export(since, until))
    assert [item["seq"] for item in items] == [2, 3]  # [since, until)
    assert [item["recorded_at"] for item in items] == [
        "2020-01-07T09:00:00.000000Z",
        "2020-01-08T09:00:00.000000Z",
    ]
    assert [item["seq"] for item in trail.export(since=T0 + timedelta(days=4))] == [5]
    assert [item["seq"] for item in trail.export(until=T0 + timedelta(seconds=1))] == [1]
    assert list(trail.export(T0 + timedelta(days=10), T0 + timedelta(days=20))) == []


def test_export_stops_at_a_damaged_record(trail: AuditTrail, raw: Engine) -> None:
    fill(trail, 3)
    with raw.begin() as conn:
        _flip_ciphertext(conn, 2)
    items = trail.export()
    assert next(items)["seq"] == 1
    with pytest.raises(AuditIntegrityError, match="seq 2"):
        next(items)


# ---------------------------------------------------------------------- concurrency


def test_concurrent_writers_in_threads_keep_one_chain(backend: Backend, keyring: Keyring) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            with AuditTrail.open(backend.url, keyring) as own:  # each worker its own engine and connections
                for i in range(15):
                    own.append(event(n * 100 + i))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, "".join(line for e in errors for line in traceback.format_exception(e))
    with AuditTrail.open(backend.url, keyring) as check:
        report = check.verify()
        assert report.ok and report.checked == 60, report.lines()
        ids = sorted(item["event"]["resource_ids"][0] for item in check.export())
    assert ids == sorted(f"appt-{n * 100 + i}" for n in range(4) for i in range(15))


WORKER = """
import sys
from voice_agent.audit import Actor, AuditEvent, AuditTrail, Keyring
keyring = Keyring.from_string(sys.stdin.read())
with AuditTrail.open(sys.argv[1], keyring) as trail:
    for i in range(int(sys.argv[3])):
        trail.append(AuditEvent.now(actor=Actor(kind="service", id="worker-" + sys.argv[2]),
                                    purpose="find-slots", action="fhir.search", outcome="success"))
"""


def test_concurrent_writer_processes_keep_one_chain(backend: Backend) -> None:
    keys = f"kp {base64.b64encode(os.urandom(32)).decode()}"
    with AuditTrail.open(backend.url, Keyring.from_string(keys)):
        pass  # create the tables first, as the agent's start-up would
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, backend.url, str(n), "20"], stdin=subprocess.PIPE, text=True
        )
        for n in range(3)
    ]
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(keys)
        process.stdin.close()
    assert [process.wait(timeout=60) for process in processes] == [0, 0, 0]
    with AuditTrail.open(backend.url, Keyring.from_string(keys)) as trail:
        report = trail.verify()
        assert report.ok and report.checked == 60, report.lines()
        actors = [item["event"]["actor"]["id"] for item in trail.export()]
    assert sorted(set(actors)) == ["worker-0", "worker-1", "worker-2"]


def test_a_plain_postgresql_url_uses_psycopg3(backend: Backend, keyring: Keyring) -> None:
    url = backend.url.replace("postgresql+psycopg://", "postgresql://")
    with AuditTrail.open(url, keyring) as trail:
        assert trail.append(event(1)) == 1
        assert trail.verify().ok
