"""The procedures of docs/operations.md, run as written: back up the shared PostgreSQL with pg_dump and
restore it elsewhere, then ``voice-agent audit verify``; rotate the audit key across several workers
without any of them refusing to write."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest

from harness.postgres import PostgresServer, find_bindir, postgres_server_fixture
from tests.backends import key_line
from voice_agent.audit import (
    Actor,
    AuditAction,
    AuditEvent,
    AuditIntegrityError,
    AuditPurpose,
    AuditTrail,
    Keyring,
)
from voice_agent.sandbox.private import VOICE_AGENT

postgres_server = postgres_server_fixture()

SERVICE = Actor(kind="service", id="voice-agent")


def event(action: AuditAction = AuditAction.SESSION_START) -> AuditEvent:
    return AuditEvent(
        time=datetime.now(UTC),
        actor=SERVICE,
        purpose=AuditPurpose.CALL_SESSION,
        action=action,
        outcome="success",
        session_id=uuid4(),
    )


def pg(tool: str) -> str:
    bindir = find_bindir()
    assert bindir is not None
    return str(bindir / tool)


def verify_cli(url: str, keys: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "VOICE_AGENT_AUDIT_DATABASE_URL": url,
        "VOICE_AGENT_AUDIT_KEYS": keys,
        "VOICE_AGENT_DEV_DIR": str(tmp_path / "dev"),
    }
    return subprocess.run(
        [VOICE_AGENT, "audit", "verify"], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_pg_dump_restored_elsewhere_verifies_intact(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    keys = key_line("k1")
    source = postgres_server.create_database()
    with AuditTrail.open(source, Keyring.from_string(keys)) as trail:
        for _ in range(25):
            trail.append(event())
        head = trail.head()
    assert head is not None
    dump = tmp_path / "voice-agent.dump"
    libpq = source.replace("postgresql+psycopg://", "postgresql://")
    subprocess.run([pg("pg_dump"), "--format=custom", f"--file={dump}", libpq], check=True, timeout=120)

    target = postgres_server.create_database()
    subprocess.run(
        [
            pg("pg_restore"),
            "--no-owner",
            f"--dbname={target.replace('postgresql+psycopg://', 'postgresql://')}",
            str(dump),
        ],
        check=True,
        timeout=120,
    )
    verified = verify_cli(target, keys, tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "Audit trail intact: 25 records, seq 1-25" in verified.stdout
    with AuditTrail.open(target, Keyring.from_string(keys)) as restored:
        assert restored.head() == head
        restored.append(event(AuditAction.SESSION_END))  # the restored trail goes on from where it was
        assert restored.verify().ok

    # Without the key (kept apart from the backups), the restored database tells nothing and cannot be
    # extended: the chain alone still checks.
    assert verify_cli(target, key_line("k1"), tmp_path).returncode == 1


def test_a_staged_key_rotation_keeps_every_worker_writing(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    old, new = key_line("k1"), key_line("k2")
    url = postgres_server.create_database()
    before = Keyring.from_string(old)
    staged = Keyring.from_string(f"{new};{old}")  # step 1: every worker learns k2; k1 still signs
    rotated = Keyring.from_string(f"{old};{new}")  # step 2: k2 signs (the last line is the active key)
    assert staged.active_id == "k1" and rotated.active_id == "k2"

    with AuditTrail.open(url, before) as worker_a, AuditTrail.open(url, before) as worker_b:
        worker_a.append(event())
        worker_b.append(event())
    # Step 1, one worker at a time: old and staged workers write side by side.
    with AuditTrail.open(url, staged) as worker_a, AuditTrail.open(url, before) as worker_b:
        worker_a.append(event())
        worker_b.append(event())
    # Step 2, one worker at a time: a rotated worker signs the head with k2. A worker skipped in step 1
    # then refuses to write rather than re-sign a head it cannot check: its calls fail closed (no audit,
    # no call) until it gets the keys. A staged worker writes on, since it knows k2.
    with AuditTrail.open(url, rotated) as worker_a, AuditTrail.open(url, staged) as worker_b:
        worker_a.append(event())
        with AuditTrail.open(url, before) as forgotten, pytest.raises(AuditIntegrityError):
            forgotten.append(event())
        worker_b.append(event())
    verified = verify_cli(url, f"{old};{new}", tmp_path)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "6 records" in verified.stdout
