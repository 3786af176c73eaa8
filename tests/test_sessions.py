"""Ephemeral call sessions on a real (encrypted, hash-chained) audit trail: start, activity, logoff, wipe."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fhir_adapters import PatientRef
from voice_agent.audit import (
    AuditRecorder,
    AuditTrail,
    AuditWriteError,
    Keyring,
    current_session_id,
    generate_key_file,
)
from voice_agent.privacy import current_names, remember_name
from voice_agent.session import SessionManager


@pytest.fixture
def trail(tmp_path: Path) -> Iterator[AuditTrail]:
    key_file = tmp_path / "audit.key"
    generate_key_file(key_file)
    with AuditTrail.open(f"sqlite:///{tmp_path / 'audit.db'}", Keyring.from_file(key_file)) as opened:
        yield opened


def events(trail: AuditTrail) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [row["event"] for row in trail.export(now - timedelta(days=1), now + timedelta(days=1))]


async def test_an_idle_call_is_logged_off_wiped_and_audited_as_timed_out(trail: AuditTrail) -> None:
    sessions = SessionManager(AuditRecorder(trail, "voice-agent"), idle_timeout=0.3)
    session = await sessions.start(caller_number="+1-555-0142")
    session.patient = PatientRef("pat-001")
    session.heard.append("my birthday is the third of March")
    session.found["appointments"] = ["appt-001"]
    assert sessions.active == 1
    await asyncio.sleep(0.9)  # the reaper runs on its own; nobody calls end()
    assert sessions.active == 0 and sessions.get(session.id) is None
    assert session.ended == "timeout"
    assert session.caller_number is None and session.patient is None  # wiped, not just dropped
    assert not session.heard and not session.found
    ends = [e for e in events(trail) if e["action"] == "session.end"]
    assert len(ends) == 1
    assert ends[0]["session_id"] == str(session.id)
    assert ends[0]["end_reason"] == "timeout" and ends[0]["phi_retained"] == "none"
    assert 0.3 <= ends[0]["duration_seconds"] < 5
    assert trail.verify().ok


async def test_activity_keeps_a_call_alive(trail: AuditTrail) -> None:
    sessions = SessionManager(AuditRecorder(trail, "voice-agent"), idle_timeout=0.4)
    session = await sessions.start()
    for _ in range(6):
        await asyncio.sleep(0.15)
        sessions.touch(session)
    assert session.ended is None and sessions.active == 1
    await sessions.end(session, "goodbye")
    await sessions.end(session, "hangup")  # idempotent: still one end event, the first reason
    ends = [e for e in events(trail) if e["action"] == "session.end"]
    assert [e["end_reason"] for e in ends] == ["goodbye"]


async def test_the_default_idle_timeout_is_fifteen_minutes(trail: AuditTrail) -> None:
    now = [1000.0]
    sessions = SessionManager(AuditRecorder(trail, "voice-agent"), idle_timeout=15 * 60, clock=lambda: now[0])
    session = await sessions.start()
    now[0] += 14 * 60 + 59
    assert await sessions.sweep() == 0
    now[0] += 1
    assert await sessions.sweep() == 1
    assert session.ended == "timeout"
    await sessions.shutdown()


async def test_a_call_scope_binds_the_session_to_audit_and_redaction_and_ends_it(trail: AuditTrail) -> None:
    sessions = SessionManager(AuditRecorder(trail, "voice-agent"), idle_timeout=60)
    async with sessions.call(caller_number="+1-555-0199") as session:
        assert current_session_id.get() == session.id
        remember_name("Quenby Zarkovich")
        names = current_names()
        assert names is not None and len(names) == 1
    assert current_session_id.get() is None
    assert session.ended == "hangup" and len(names) == 0  # the name registry was wiped with the call
    with pytest.raises(RuntimeError):
        async with sessions.call() as failing:
            raise RuntimeError("transport dropped")
    assert failing.ended == "error"
    assert [e["end_reason"] for e in events(trail) if e["action"] == "session.end"] == ["hangup", "error"]


async def test_shutdown_ends_every_live_call(trail: AuditTrail) -> None:
    sessions = SessionManager(AuditRecorder(trail, "voice-agent"), idle_timeout=60)
    live = [await sessions.start() for _ in range(3)]
    hung_up: list[str] = []

    async def hang_up(reason: str) -> None:
        hung_up.append(reason)

    live[0].on_end.append(hang_up)
    await sessions.shutdown()
    assert sessions.active == 0 and all(s.ended == "shutdown" for s in live)
    assert hung_up == ["shutdown"]


async def test_no_audit_no_call(trail: AuditTrail, tmp_path: Path) -> None:
    """A trail whose head fails its HMAC (here: opened with the wrong key) refuses appends, so the agent
    refuses the call rather than take it unaudited."""
    await AuditRecorder(trail, "voice-agent").session_started(__import__("uuid").uuid4())
    wrong = tmp_path / "wrong.key"
    generate_key_file(wrong)
    with AuditTrail.open(f"sqlite:///{tmp_path / 'audit.db'}", Keyring.from_file(wrong)) as mismatched:
        sessions = SessionManager(AuditRecorder(mismatched, "voice-agent"), idle_timeout=60)
        with pytest.raises(AuditWriteError):
            await sessions.start()
        assert sessions.active == 0


def test_a_session_repr_leaks_nothing() -> None:
    from uuid import uuid4

    from voice_agent.session import CallSession

    session = CallSession(id=uuid4(), started=0, last_activity=0, caller_number="+1-555-0142")
    session.heard.append("Quenby Zarkovich")
    assert "555" not in repr(session) and "Quenby" not in repr(session)
