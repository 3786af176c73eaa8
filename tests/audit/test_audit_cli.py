"""``voice-agent audit``: verify, export, purge, keygen, driven through the typer app."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, delete
from typer.testing import CliRunner

from voice_agent.audit import Actor, AuditEvent, open_trail
from voice_agent.audit.store import events_table
from voice_agent.cli.audit import app
from voice_agent.settings import Settings

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A clinic-style configuration in a temp dir: named key file and database."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOICE_AGENT_DEV_DIR", str(tmp_path / "dev"))
    monkeypatch.setenv("VOICE_AGENT_AUDIT_DATABASE_URL", f"sqlite:///{tmp_path / 'audit.db'}")
    monkeypatch.setenv("VOICE_AGENT_AUDIT_KEY_FILE", str(tmp_path / "audit.key"))
    return tmp_path


def fill(count: int, *, start: datetime | None = None, step: timedelta = timedelta(minutes=1)) -> None:
    moments = iter([(start or datetime.now(UTC)) + step * n for n in range(count)])
    with open_trail(Settings(), clock=lambda: next(moments)) as trail:
        for n in range(count):
            trail.append(
                AuditEvent.now(
                    actor=Actor(kind="service", id="voice-agent"),
                    purpose="list-appointments",
                    action="fhir.search",
                    outcome="success",
                    resource_type="Appointment",
                    resource_ids=(f"appt-{n}",),
                )
            )


def test_keygen_creates_a_private_key_file_and_never_prints_the_key(env: Path) -> None:
    result = runner.invoke(app, ["keygen"])
    assert result.exit_code == 0, result.output
    key_file = env / "audit.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_id, key = key_file.read_text().splitlines()[-1].split()
    assert key_id in result.output and key not in result.output
    second = runner.invoke(app, ["keygen", "--key-id", "k2026"])
    assert second.exit_code == 0 and "k2026" in second.output
    other = env / "elsewhere" / "k.key"
    assert runner.invoke(app, ["keygen", "--key-file", str(other)]).exit_code == 0
    assert other.exists()


def test_verify_passes_then_names_the_tampered_seq(env: Path) -> None:
    runner.invoke(app, ["keygen"])
    fill(5)
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 0, result.output
    assert "intact: 5 records" in result.output
    engine = create_engine(f"sqlite:///{env / 'audit.db'}")
    with engine.begin() as conn:
        conn.execute(delete(events_table).where(events_table.c.seq == 3))
    engine.dispose()
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 1
    assert "FAILED" in result.output and "seq 3: missing" in result.output
    chain_only = runner.invoke(app, ["verify", "--chain-only"])
    assert chain_only.exit_code == 1 and "seq 3: missing" in chain_only.output
    assert "no key" in chain_only.output


def test_verify_without_usable_keys_exits_2_with_a_reason(env: Path) -> None:
    result = runner.invoke(app, ["verify"])
    assert result.exit_code == 2
    assert "does not exist" in result.output and "keygen" in result.output


def test_export_writes_json_lines_for_the_range_and_is_audited(env: Path) -> None:
    runner.invoke(app, ["keygen"])
    fill(4, start=datetime(2026, 3, 1, 12, tzinfo=UTC), step=timedelta(days=1))
    out = env / "export.jsonl"
    result = runner.invoke(
        app, ["export", "--since", "2026-03-02", "--until", "2026-03-03", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [item["seq"] for item in lines] == [2, 3]  # --until names a whole day
    assert lines[0]["event"]["resource_ids"] == ["appt-1"]
    assert {"seq", "recorded_at", "hash", "prev_hash", "key_id", "event"} <= set(lines[0])

    to_stdout = runner.invoke(
        app, ["export", "--since", "2026-03-01T12:00:00Z", "--until", "2026-03-01T12:00:01"]
    )
    assert to_stdout.exit_code == 0
    assert [json.loads(line)["seq"] for line in to_stdout.stdout.splitlines()] == [1]

    with open_trail(Settings()) as trail:
        exports = [item["event"] for item in trail.export() if item["event"]["action"] == "audit.export"]
    assert [e["event_count"] for e in exports] == [2, 1]
    assert exports[0]["purpose"] == "audit-review"
    assert exports[0]["range_start"] == "2026-03-02T00:00:00Z"


@pytest.mark.parametrize(
    "args",
    [["--since", "yesterday", "--until", "2026-01-01"], ["--since", "2026-02-01", "--until", "2026-01-01"]],
)
def test_export_rejects_bad_ranges(env: Path, args: list[str]) -> None:
    runner.invoke(app, ["keygen"])
    result = runner.invoke(app, ["export", *args])
    assert result.exit_code == 2


def test_purge_uses_the_retention_and_reports_counts(env: Path) -> None:
    runner.invoke(app, ["keygen"])
    fill(3, start=datetime.now(UTC) - timedelta(days=400))
    fill(2)
    result = runner.invoke(app, ["purge", "--retention-days", "365"])
    assert result.exit_code == 0, result.output
    assert "Purged 3 events" in result.output and "seq 6" in result.output
    assert runner.invoke(app, ["verify"]).exit_code == 0
    default = runner.invoke(app, ["purge"])
    assert (
        default.exit_code == 0
        and "Purged 0 events" in default.output
        and "retention 2196 days" in default.output
    )


def test_purge_refuses_a_tampered_trail(env: Path) -> None:
    runner.invoke(app, ["keygen"])
    fill(3, start=datetime.now(UTC) - timedelta(days=400))
    engine = create_engine(f"sqlite:///{env / 'audit.db'}")
    with engine.begin() as conn:
        conn.execute(delete(events_table).where(events_table.c.seq == 2))
    engine.dispose()
    result = runner.invoke(app, ["purge", "--retention-days", "30"])
    assert result.exit_code == 1
    assert "refusing to purge" in result.output and "seq 2: missing" in result.output


def test_registered_as_voice_agent_audit(env: Path) -> None:
    """Once main.py registers the sub-app, the installed command reaches it."""
    from voice_agent.cli.main import app as main_app

    if not any(group.name == "audit" for group in main_app.registered_groups):
        pytest.skip("voice_agent.cli.main does not register the audit sub-app yet")
    runner.invoke(app, ["keygen"])
    fill(2)
    code = "from voice_agent.cli.main import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code, "audit", "verify"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "intact: 2 records" in result.stdout
