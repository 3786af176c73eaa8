"""Several workers on one trail: a killed worker's calls end up closed as interrupted, never missing,
and exactly once however many survivors notice."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID, uuid4

import pytest
from sqlalchemy import select

from harness.postgres import postgres_server_fixture
from tests.backends import Backend, Clock, new_keyring
from tests.backends import backend as backend  # fixture: used by parameter name
from voice_agent.audit import Actor, AuditRecorder, AuditTrail
from voice_agent.audit.workers import WorkerLedger, session_lines, workers_table

postgres_server = postgres_server_fixture()

HEARTBEAT = 5.0
SURVIVOR = Actor(kind="service", id="voice-agent")


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC))


@pytest.fixture
def trail(backend: Backend, clock: Clock) -> Iterator[AuditTrail]:
    with AuditTrail.open(backend.url, new_keyring("k1"), clock=clock) as opened:
        yield opened


def worker(trail: AuditTrail, clock: Clock, name: str) -> tuple[WorkerLedger, AuditRecorder]:
    ledger = WorkerLedger(trail, name, heartbeat_seconds=HEARTBEAT, clock=clock)
    ledger.create()
    ledger.register()
    return ledger, AuditRecorder(trail, "voice-agent", ledger=ledger)


def session_events(trail: AuditTrail) -> list[dict[str, object]]:
    return [e["event"] for e in trail.export() if str(e["event"]["action"]).startswith("session.")]


async def test_a_dead_workers_open_calls_are_closed_as_interrupted_by_a_survivor(
    trail: AuditTrail, clock: Clock
) -> None:
    _, doomed_audit = worker(trail, clock, "worker-a")
    survivor, survivor_audit = worker(trail, clock, "worker-b")
    lost = [uuid4(), uuid4()]
    finished, live = uuid4(), uuid4()
    for sid in lost:
        await doomed_audit.session_started(sid)
    await doomed_audit.session_started(finished)
    await doomed_audit.session_ended(finished, "goodbye", 42.0)
    await survivor_audit.session_started(live)

    # worker-a is killed: it beats no more. Within its grace, nothing is closed.
    clock.advance(seconds=HEARTBEAT * 2)
    survivor.heartbeat()
    assert survivor.reap(SURVIVOR) == []
    before = trail.verify()
    assert before.ok and before.sessions is not None
    assert set(before.sessions.unended) == {*lost, live}
    stranded = session_lines(before.sessions, survivor.open_sessions())
    assert "In progress (their worker is alive): 3" in stranded  # a-'s grace has not run out yet

    clock.advance(seconds=HEARTBEAT * 2)
    survivor.heartbeat()
    assert sorted(survivor.reap(SURVIVOR)) == sorted(lost)

    ends = [e for e in session_events(trail) if e["action"] == "session.end"]
    interrupted = [e for e in ends if e.get("end_reason") == "interrupted"]
    assert {UUID(str(e["session_id"])) for e in interrupted} == set(lost)
    assert all(
        e["outcome"] == "interrupted" and e["worker"] == "worker-a" and e["phi_retained"] == "none"
        for e in interrupted
    )
    report = trail.verify()
    assert report.ok, report.lines()
    assert report.sessions is not None
    assert set(report.sessions.interrupted) == set(lost) and set(report.sessions.unended) == {live}
    lines = session_lines(report.sessions, survivor.open_sessions())
    assert lines[0] == "Calls: 4 sessions started; ended: goodbye 1, interrupted 2."
    assert any(line.startswith("Interrupted (the worker died mid-call") for line in lines)
    assert f"  session {live} on worker worker-b" in lines  # listed under in progress, untouched
    assert not any("not yet closed" in line for line in lines)

    # A second pass (or a second survivor) finds nothing left to close.
    assert survivor.reap(SURVIVOR) == []


async def test_verify_names_a_dead_workers_calls_before_anyone_closes_them(
    trail: AuditTrail, clock: Clock
) -> None:
    doomed, audit = worker(trail, clock, "worker-a")
    sid = uuid4()
    await audit.session_started(sid)
    clock.advance(seconds=HEARTBEAT * 4)
    report = trail.verify()
    assert report.ok and report.sessions is not None
    lines = session_lines(report.sessions, doomed.open_sessions())
    assert "Interrupted, not yet closed (their worker stopped without ending them): 1" in lines
    assert f"  session {sid} on worker worker-a" in lines


async def test_two_survivors_reaping_at_once_close_each_session_exactly_once(
    trail: AuditTrail, clock: Clock
) -> None:
    _, doomed_audit = worker(trail, clock, "worker-a")
    lost = [uuid4() for _ in range(6)]
    for sid in lost:
        await doomed_audit.session_started(sid)
    survivors = [worker(trail, clock, name)[0] for name in ("worker-b", "worker-c")]
    clock.advance(seconds=HEARTBEAT * 4)
    for ledger in survivors:
        ledger.heartbeat()
    closed: list[list[UUID]] = []
    threads = [threading.Thread(target=lambda s=s: closed.append(s.reap(SURVIVOR))) for s in survivors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(sid for batch in closed for sid in batch) == sorted(lost)
    ends = [e for e in session_events(trail) if e["action"] == "session.end"]
    assert sorted(UUID(str(e["session_id"])) for e in ends) == sorted(lost)
    assert trail.verify().ok


async def test_a_clean_exit_leaves_no_worker_row_and_no_open_session(trail: AuditTrail, clock: Clock) -> None:
    ledger, audit = worker(trail, clock, "worker-a")
    sid = uuid4()
    await audit.session_started(sid)
    await audit.session_ended(sid, "shutdown", 3.0)
    ledger.retire()
    assert ledger.open_sessions() == []
    clock.advance(hours=1)
    other, _ = worker(trail, clock, "worker-b")
    assert other.reap(SURVIVOR) == []
    starts = [e for e in session_events(trail) if e["action"] == "session.start"]
    assert [e["worker"] for e in starts] == ["worker-a"]


async def test_a_stalled_worker_that_beats_again_is_registered_again(trail: AuditTrail, clock: Clock) -> None:
    stalled, _ = worker(trail, clock, "worker-a")
    other, _ = worker(trail, clock, "worker-b")
    clock.advance(seconds=HEARTBEAT * 4)
    other.heartbeat()
    other.reap(SURVIVOR)  # presumes worker-a dead and drops its row
    stalled.heartbeat()
    assert {s.worker_id for s in stalled.open_sessions()} == set()
    sid = uuid4()
    await AuditRecorder(trail, "voice-agent", ledger=stalled).session_started(sid)
    assert [s.worker_alive for s in other.open_sessions()] == [True]


async def test_a_dead_worker_without_calls_leaves_no_row_behind(trail: AuditTrail, clock: Clock) -> None:
    worker(trail, clock, "worker-a")  # crashes with no call in progress
    clock.advance(seconds=HEARTBEAT * 4)
    survivor, _ = worker(trail, clock, "worker-b")
    assert survivor.reap(SURVIVOR) == []
    with trail.engine.connect() as conn:
        names = {row.worker_id for row in conn.execute(select(workers_table))}
    assert names == {"worker-b"}
    assert session_events(trail) == []  # nothing to audit: no call was cut off
