"""Checkpoints of the chain's tail outside the database (issue 17, point 4), on SQLite and PostgreSQL: the
restored-head attack that plain ``audit verify`` cannot see, edited and forged checkpoint lines, purged
checkpoints, concurrent writers on one file, the SIEM copies, and ``serve`` writing one at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import stat
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import Engine, delete, select, update
from typer.testing import CliRunner

from harness.postgres import postgres_server_fixture
from tests.backends import Backend, Clock, key_line
from tests.backends import backend as backend  # fixtures: used by parameter name
from tests.backends import raw as raw
from voice_agent.audit import Actor, AuditEvent, AuditIntegrityError, AuditTrail, Keyring
from voice_agent.audit.checkpoint import (
    Checkpoint,
    Checkpointer,
    CheckpointFile,
    read_checkpoints,
    verify_checkpoints,
)
from voice_agent.audit.siem import SyslogSink, WebhookSink
from voice_agent.audit.store import GENESIS_HASH, HeadRecord, events_table, head_table
from voice_agent.cli.audit import app
from voice_agent.settings import Settings

postgres_server = postgres_server_fixture()
runner = CliRunner()
SERVICE = Actor(kind="service", id="voice-agent")


@dataclass
class Env:
    keyring: Keyring
    keys: str  # the same keys, as VOICE_AGENT_AUDIT_KEYS holds them
    checkpoints: Path  # the default file (VOICE_AGENT_DEV_DIR/audit-checkpoints.jsonl)


@pytest.fixture
def env(backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    """A clinic-style configuration for the CLI: this backend's database, keys from the environment."""
    line = key_line("k1")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VOICE_AGENT_DEV_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("VOICE_AGENT_AUDIT_DATABASE_URL", backend.url)
    monkeypatch.setenv("VOICE_AGENT_AUDIT_KEYS", line)
    return Env(Keyring.from_string(line), line, tmp_path / "state" / "audit-checkpoints.jsonl")


@pytest.fixture
def trail(backend: Backend, env: Env) -> Iterator[AuditTrail]:
    with AuditTrail.open(backend.url, env.keyring) as opened:
        yield opened


def fill(trail: AuditTrail, count: int) -> None:
    for n in range(count):
        trail.append(
            AuditEvent.now(
                actor=SERVICE,
                purpose="book",
                action="fhir.read",
                outcome="success",
                resource_type="Appointment",
                resource_ids=(f"appt-{n}",),
            )
        )


def checkpointer(
    trail: AuditTrail, env: Env, worker: str = "worker-1", path: Path | None = None
) -> Checkpointer:
    return Checkpointer(trail, env.keyring, CheckpointFile(path or env.checkpoints), worker=worker)


def test_a_restored_head_fools_plain_verify_but_not_the_checkpoints(
    trail: AuditTrail, env: Env, raw: Engine
) -> None:
    """The issue's scenario exactly: events, checkpoint, save the head row, more events, checkpoint, then
    delete the newer events and put the saved head back."""
    anchor = checkpointer(trail, env)
    fill(trail, 3)
    anchor.write()
    with raw.connect() as conn:
        saved = conn.execute(select(head_table)).one()._asdict()
    fill(trail, 3)
    assert anchor.write().seq == 6
    with raw.begin() as conn:
        conn.execute(delete(events_table).where(events_table.c.seq > 3))
        conn.execute(update(head_table).values(**saved))

    plain = runner.invoke(app, ["verify"])
    assert plain.exit_code == 0, plain.output  # chain and head agree: the head alone cannot tell
    assert "Audit trail intact: 3 records" in plain.output

    anchored = runner.invoke(app, ["verify", "--checkpoints"])
    assert anchored.exit_code == 1, anchored.output
    assert "Audit trail intact: 3 records" in anchored.output
    assert f"Checkpoints FAILED (2 in {env.checkpoints}" in anchored.output
    assert (
        "trail: truncated: the trail ends at seq 3, but a checkpoint written" in anchored.output
        and "by worker-1 vouches for seq 6: newer events were deleted and an older head put back"
        in anchored.output
    )
    assert f"{env.checkpoints} line 2 (seq 6): missing: beyond the trail's head (seq 3)" in anchored.output


def test_intact_checkpoints_pass_and_an_edited_or_foreign_line_fails(trail: AuditTrail, env: Env) -> None:
    anchor = checkpointer(trail, env)
    for _ in range(3):
        fill(trail, 2)
        anchor.write()
    elsewhere = env.checkpoints.parent / "other-host.jsonl"
    checkpointer(trail, env, worker="worker-2", path=elsewhere).write()

    intact = runner.invoke(app, ["verify", "--checkpoints", str(env.checkpoints), str(elsewhere)])
    assert intact.exit_code == 0, intact.output
    assert f"Checkpoints intact: 4 in {env.checkpoints}, {elsewhere} match the trail; newest seq 6" in (
        intact.output
    )
    assert "checked HMAC, seq and hash" in intact.output

    lines = env.checkpoints.read_text().splitlines()
    edited = json.loads(lines[0])
    edited["seq"] = 6  # point an old checkpoint at a record it never saw (as a cover-up would)
    edited["hash"] = json.loads(lines[2])["hash"]
    lines[0] = json.dumps(edited, separators=(",", ":"))
    env.checkpoints.write_text("\n".join(lines) + "\n")
    forged = runner.invoke(app, ["verify", "--checkpoints"])
    assert forged.exit_code == 1, forged.output
    assert f"{env.checkpoints} line 1 (seq 6): forged: its HMAC does not verify" in forged.output

    other = Keyring.from_string(key_line("k1"))  # same key id, another key: someone without the keys
    head = HeadRecord(6, "a" * 64, 0, GENESIS_HASH, "k1", "")
    stranger = Checkpoint.of(head, other, at=datetime.now(UTC), worker="worker-9")
    elsewhere.write_bytes(stranger.to_line() + b"garbage\n")
    mixed = runner.invoke(app, ["verify", "--checkpoints", str(elsewhere)])
    assert mixed.exit_code == 1
    assert f"{elsewhere} line 1 (seq 6): forged" in mixed.output
    assert f"{elsewhere} line 2: unreadable: not a checkpoint: not JSON" in mixed.output

    chain_only = runner.invoke(app, ["verify", "--chain-only", "--checkpoints", str(elsewhere)])
    assert chain_only.exit_code == 1  # without the key the forged line is compared, and does not match
    assert "rewritten" in chain_only.output and "no key: checkpoint HMACs not checked" in chain_only.output


def test_no_checkpoint_file_for_a_trail_with_events_fails(trail: AuditTrail, env: Env) -> None:
    empty = runner.invoke(app, ["verify", "--checkpoints"])
    assert empty.exit_code == 0 and "(the trail is still empty)" in empty.output  # a fresh install
    fill(trail, 1)
    result = runner.invoke(app, ["verify", "--checkpoints"])
    assert result.exit_code == 1
    assert f"{env.checkpoints}: unreadable: no checkpoint file here" in result.output
    assert runner.invoke(app, ["verify", str(env.checkpoints)]).exit_code == 2  # a path needs --checkpoints


def test_purged_checkpoints_are_checked_against_the_anchor_or_noted(
    backend: Backend, env: Env, trail: AuditTrail
) -> None:
    clock = Clock(datetime.now(UTC) - timedelta(days=400))
    with AuditTrail.open(backend.url, env.keyring, clock=clock) as old:
        anchor = checkpointer(old, env)
        fill(old, 2)
        anchor.write()  # seq 2: purged below the anchor, not checkable
        fill(old, 1)
        at_anchor = anchor.write()  # seq 3: becomes the purge anchor, checked against its hash
    fill(trail, 2)
    trail.purge(datetime.now(UTC), 365, SERVICE)
    checkpointer(trail, env).write()
    report = verify_checkpoints(trail, [env.checkpoints])
    assert report.ok, report.lines()
    assert report.checked == 3 and report.newest is not None and report.newest.seq == 6
    assert any("1 checkpoint(s) below the purge anchor (seq 3) not checkable" in n for n in report.notes)

    head = trail.head()
    assert head is not None and head.anchor_seq == 3
    wrong = replace(at_anchor, hash="f" * 64)
    resigned = Checkpoint.of(
        HeadRecord(wrong.seq, wrong.hash, 0, GENESIS_HASH, "k1", ""), env.keyring, at=wrong.at, worker="w"
    )
    with env.checkpoints.open("ab") as handle:
        handle.write(resigned.to_line())
    report = verify_checkpoints(trail, [env.checkpoints])
    assert [(p.kind, p.seq) for p in report.problems] == [("rewritten", 3)]
    assert "the purge anchor (seq 3) is not the record this checkpoint saw" in report.problems[0].detail


def test_concurrent_workers_append_whole_lines_to_one_file(backend: Backend, env: Env) -> None:
    """Two workers (each its own engine) append events and checkpoints at once to one file."""
    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with AuditTrail.open(backend.url, env.keyring) as own:
                anchor = checkpointer(own, env, worker=name)
                for _ in range(8):
                    fill(own, 1)
                    anchor.write()
        except BaseException as error:  # reported below, not lost in the thread
            errors.append(error)

    threads = [threading.Thread(target=work, args=(f"worker-{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    read = read_checkpoints([env.checkpoints])
    assert read.unreadable == [] and read.notes == [] and len(read.entries) == 24
    with AuditTrail.open(backend.url, env.keyring) as trail:
        report = verify_checkpoints(trail, [env.checkpoints])
        assert report.ok, report.lines()
        assert report.newest is not None and report.newest.seq == 24


def test_the_file_is_private_append_only_and_survives_a_torn_line(trail: AuditTrail, env: Env) -> None:
    anchor = checkpointer(trail, env)
    fill(trail, 1)
    anchor.write()
    assert stat.S_IMODE(env.checkpoints.stat().st_mode) == 0o600
    with env.checkpoints.open("ab") as handle:
        handle.write(b'{"v":1,"seq":')  # a crash in the middle of a write
    assert any("has no newline" in note for note in read_checkpoints([env.checkpoints]).notes)
    anchor.write()  # ends the torn line first, so the new checkpoint stands on a line of its own
    read = read_checkpoints([env.checkpoints])
    assert [c.seq for _, c in read.entries] == [1, 1]
    assert [why for _, why in read.unreadable] == ["not a checkpoint: not JSON"]  # the torn one, named


def test_a_forged_head_is_never_checkpointed(trail: AuditTrail, env: Env, raw: Engine) -> None:
    fill(trail, 2)
    with raw.begin() as conn:
        conn.execute(update(head_table).values(seq=1))
    with pytest.raises(AuditIntegrityError):
        checkpointer(trail, env).write()
    assert not env.checkpoints.exists()


# ---------------------------------------------------------------------- serve and the SIEM


def settings_for(url: str, keys: str, tmp_path: Path) -> Settings:
    with warnings.catch_warnings():  # plain HTTP to a FHIR server that is never called
        warnings.simplefilter("ignore")
        return Settings(
            dev_dir=tmp_path / "state",
            audit_database_url=url,
            audit_keys=SecretStr(keys),
            fhir_base_url="http://127.0.0.1:9/fhir",
            fhir_allow_plain_http=True,
            fhir_require_client_cert=False,
            worker_id="worker-serve",
        )


async def test_serve_checkpoints_at_start_and_last_of_all_at_shutdown(
    backend: Backend, env: Env, tmp_path: Path
) -> None:
    from voice_agent.runtime import runtime

    settings = settings_for(backend.url, env.keys, tmp_path)
    unused = httpx.MockTransport(lambda request: httpx.Response(599))
    async with runtime(settings, transport=unused, checkpoints=True) as agent:
        await agent.sessions.start(caller_number=None)  # its end is written at shutdown
    with AuditTrail.open(backend.url, env.keyring) as trail:
        head = trail.head()
        report = verify_checkpoints(trail, [settings.audit_checkpoint_path])
    assert head is not None and report.ok, report.lines()
    seqs = [c.seq for _, c in read_checkpoints([settings.audit_checkpoint_path]).entries]
    assert seqs[-1] == head.seq and len(seqs) >= 2  # the shutdown one covers the session's end
    assert report.newest is not None and report.newest.worker == "worker-serve"


async def test_serve_asks_its_runtime_for_checkpoints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import voice_agent.ingress.app as ingress

    asked: list[dict[str, Any]] = []

    @contextlib.asynccontextmanager
    async def fake_runtime(_settings: Settings, **options: Any) -> AsyncIterator[None]:
        asked.append(options)
        raise RuntimeError("stop here: the models are not needed")
        yield

    monkeypatch.setattr(ingress, "runtime", fake_runtime)
    served: FastAPI = ingress.create_app(
        settings_for(f"sqlite:///{tmp_path / 'a.db'}", key_line("k1"), tmp_path)
    )
    with pytest.raises(RuntimeError, match="stop here"):
        async with served.router.lifespan_context(served):
            pass
    assert asked == [{"checkpoints": True}]


async def test_checkpoints_reach_the_siem_signed(tmp_path: Path) -> None:
    from tests.security.test_breach_alerts import Collector, Webhook
    from voice_agent.sandbox.certs import issue, make_authority, write_pair

    authority = make_authority("SIEM test CA")
    ca, _ = write_pair(tmp_path, "ca", authority.key, authority.cert)
    cert, key = write_pair(tmp_path, "siem", *issue(authority, "siem", server_names=("127.0.0.1",)))
    collector, webhook = Collector(cert, key), Webhook(cert, key)
    secret = b"webhook-secret-for-tests-0123456789"
    try:
        host, port = collector.address.split(":")
        sinks = (
            SyslogSink(host, int(port), ca_file=ca, hostname="worker-1"),
            WebhookSink(webhook.url, secret, hostname="worker-1", ca_file=ca),
        )
        keyring = Keyring.from_string(key_line("k1"))
        with AuditTrail.open(f"sqlite:///{tmp_path / 'a.db'}", keyring) as trail:
            fill(trail, 2)
            file = CheckpointFile(tmp_path / "checkpoints.jsonl")
            written = await Checkpointer(trail, keyring, file, worker="worker-1", sinks=sinks).checkpoint()
        assert written is not None
        for _ in range(200):
            if collector.frames and webhook.posts:
                break
            await asyncio.sleep(0.05)
    finally:
        collector.close()
        webhook.shutdown()
    (frame,) = collector.frames
    assert " audit-checkpoint [checkpoint@32473 " in frame and f'mac="{written.mac}"' in frame
    assert frame.startswith("<38>1 ")  # auth facility, severity info
    ((body, signature),) = webhook.posts
    assert signature == "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()
    sent = json.loads(body)["checkpoint"]
    assert Checkpoint.parse(json.dumps(sent).encode()).signed_by(keyring)
    assert sent == written.fields()
