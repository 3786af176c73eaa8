"""Canary PHI: plant a unique synthetic patient, run a call through every code path with DEBUG logging,
then prove the canary's name, birth date and phone number are in no file the product wrote (the audit
database with every table, the audit checkpoints), in none of its output and in no audit event, while the
audit trail did record the accesses (by id, without the values)."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from harness.canary import canary_forms, plant_canary
from harness.sandbox import Sandbox
from voice_agent.audit import AuditTrail, Keyring, generate_key_file

SCRIPT = Path(__file__).with_name("canary_call.py")


@pytest.fixture
def canary(sandbox: Sandbox) -> dict[str, str]:
    return plant_canary(sandbox)


def test_canary_phi_never_reaches_disk_or_logs(
    sandbox: Sandbox, canary: dict[str, str], tmp_path: Path
) -> None:
    product = tmp_path / "product"
    (product / "tmp").mkdir(parents=True)
    (product / "cwd").mkdir()
    key_file = product / "audit.key"
    generate_key_file(key_file)
    env = {
        **sandbox.env,
        "VOICE_AGENT_LOG_LEVEL": "DEBUG",
        "VOICE_AGENT_AUDIT_DATABASE_URL": f"sqlite:///{product / 'audit.db'}",
        "VOICE_AGENT_AUDIT_KEY_FILE": str(key_file),
        "VOICE_AGENT_SESSION_IDLE_TIMEOUT_SECONDS": "2",
        # in the scanned tree: by default it would go to the sandbox's development directory
        "VOICE_AGENT_AUDIT_CHECKPOINT_FILE": str(product / "audit-checkpoints.jsonl"),
        "TMPDIR": str(product / "tmp"),
        **{k: v for k, v in canary.items() if k.startswith("CANARY_")},
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPT)],
        env=env,
        cwd=product / "cwd",
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode(errors="replace")[-4000:]
    assert b"CANARY-RUN-OK" in done.stdout

    # debug logging really was on, and the careless lines really were written (redacted), not lost
    assert b"DEBUG" in done.stderr and b"FHIR PATCH Slot -> 200" in done.stderr
    assert b"[redacted:name]" in done.stderr and b"[redacted:date]" in done.stderr
    assert b"[redacted:phone]" in done.stderr and b"Traceback" in done.stderr

    born = date.fromisoformat(canary["CANARY_DOB"])
    forms = canary_forms(canary["CANARY_GIVEN"], canary["CANARY_FAMILY"], born, canary["CANARY_PHONE"])
    written = [p for p in product.rglob("*") if p.is_file()]
    assert {"audit.db", "audit-checkpoints.jsonl"} <= {p.name for p in written}
    leaks = [
        (source, form.decode(errors="replace"))
        for source, blob in [("stdout", done.stdout), ("stderr", done.stderr)]
        + [(str(p.relative_to(product)), p.read_bytes()) for p in written]
        for form in forms
        if form in blob
    ]
    assert leaks == []

    # the accesses were audited: by the canary's resource id, never its values
    with AuditTrail.open(env["VOICE_AGENT_AUDIT_DATABASE_URL"], Keyring.from_file(key_file)) as trail:
        assert trail.verify().ok
        now = datetime.now(UTC)
        events = [row["event"] for row in trail.export(now - timedelta(hours=1), now + timedelta(hours=1))]
    actions = {e["action"] for e in events}
    assert {
        "session.start",
        "session.end",
        "fhir.search",
        "fhir.read",
        "fhir.create",
        "fhir.update",
    } <= actions
    assert any(
        canary["id"] in e.get("resource_ids", []) for e in events if e.get("resource_type") == "Patient"
    )
    assert sorted(e["end_reason"] for e in events if e["action"] == "session.end") == [
        "escalated",
        "hangup",
        "timeout",
    ]
    assert any(e["outcome"] == "not-found" for e in events)  # the refused cancel of an unknown appointment
    assert "escalation.create" in actions and "dialogue.guardrail" in actions  # the text channel's hand-off
    # the console's paths ran: refused and accepted logins, an enrolment, two rows alerted as tampered
    assert {"staff.login", "staff.enrolment", "security.alert"} <= actions
    tampered = {e["error"] for e in events if e.get("alert") == "record-tampered"}
    assert tampered == {"BadRowMac", "UnsealedRow"}  # the escalation marked resolved, the added code
    # sealed on disk, so the scan above cannot see into them: the events themselves, decrypted
    assert [form for form in forms if form in repr(events).encode()] == []


def test_the_scan_would_catch_a_leak(tmp_path: Path) -> None:
    """The detector itself: a planted plaintext canary in a written file is found."""
    forms = canary_forms("Quenby", "Zarkovich-Tillo", date(1931, 7, 4), "+1-555-321-9876")
    leaked = tmp_path / "leak.log"
    leaked.write_text("call ended for ZARKOVICH-TILLO, dob 07/04/1931, cb 321-9876\n")
    blob = leaked.read_bytes()
    assert [f for f in forms if f in blob]
    assert os.environ.get("VOICE_AGENT_LOG_LEVEL") is None  # this test process itself runs without debug
