"""``voice-agent audit``: verify, export, purge the audit trail, and manage its keys."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, TextIO

import typer

from voice_agent.audit import (
    Actor,
    AuditIntegrityError,
    AuditTrail,
    KeyringError,
    generate_key_file,
    open_trail,
)
from voice_agent.audit.checkpoint import verify_checkpoints
from voice_agent.audit.export import export_events, parse_moment
from voice_agent.audit.workers import WorkerLedger, session_lines
from voice_agent.cli.common import Commands, explain, load_settings
from voice_agent.settings import Settings

app = typer.Typer(
    cls=Commands,
    no_args_is_help=True,
    help="The audit trail: verify its integrity, export it for an auditor, purge past retention, keys.",
)


@contextmanager
def _trail(settings: Settings, *, with_key: bool = True) -> Iterator[AuditTrail]:
    try:
        trail = open_trail(settings, with_key=with_key)
    except KeyringError as exc:
        typer.echo(str(explain(exc)), err=True)  # names the setting
        raise typer.Exit(2) from None
    try:
        yield trail
    finally:
        trail.close()


def _service(settings: Settings) -> Actor:
    return Actor(kind="service", id=settings.service_identity)


def _moment(value: str, *, end: bool) -> datetime:
    try:
        return parse_moment(value, end=end)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


@app.command()
def verify(
    chain_only: Annotated[
        bool,
        typer.Option(
            "--chain-only", help="Check the hash chain without the keys (GCM tags and HMACs unchecked)."
        ),
    ] = False,
    checkpoints: Annotated[
        bool,
        typer.Option(
            "--checkpoints",
            help="Also check the trail against the signed checkpoints `serve` writes outside the database "
            "(in PATH..., default VOICE_AGENT_AUDIT_CHECKPOINT_FILE): catches deleted newest events "
            "behind a restored head.",
        ),
    ] = False,
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            metavar="PATH", show_default=False, help="Checkpoint files (with --checkpoints), one per host."
        ),
    ] = None,
) -> None:
    """Check every record; exit 0 when intact, 1 with a per-sequence-number report when not."""
    settings = load_settings()
    if paths and not checkpoints:
        raise typer.BadParameter("checkpoint files are read with --checkpoints")
    with _trail(settings, with_key=not chain_only) as trail:
        report = trail.verify()
        calls: list[str] = []
        if report.sessions is not None:
            ledger = WorkerLedger(
                trail, settings.worker_id, heartbeat_seconds=settings.worker_heartbeat_seconds
            )
            calls = session_lines(report.sessions, ledger.open_sessions())
        anchored = (
            verify_checkpoints(trail, paths or [settings.audit_checkpoint_path]) if checkpoints else None
        )
    for line in report.lines() + calls + (anchored.lines() if anchored else []):
        typer.echo(line)
    raise typer.Exit(0 if report.ok and (anchored is None or anchored.ok) else 1)


@app.command()
def export(
    since: Annotated[
        str, typer.Option(help="First day or instant, ISO 8601 (UTC unless an offset is given).")
    ],
    until: Annotated[str, typer.Option(help="Last day (inclusive) or end instant (exclusive), ISO 8601.")],
    out: Annotated[
        Path | None, typer.Option(help="Write JSON lines here (mode 0600) instead of stdout.")
    ] = None,
) -> None:
    """Decrypted events for an auditor, one JSON object per line, oldest first. The export is audited."""
    settings = load_settings()
    start, stop = _moment(since, end=False), _moment(until, end=True)
    if stop <= start:
        raise typer.BadParameter("--until must be after --since")
    with _trail(settings) as trail, _output(out) as stream:
        result = export_events(trail, start, stop, _service(settings), stream.write)
    if result.problem is not None:
        typer.echo(f"Export stopped: {result.problem}", err=True)
    typer.echo(
        f"Exported {result.count} events recorded in [{start.isoformat()}, {stop.isoformat()}).", err=True
    )
    raise typer.Exit(0 if result.ok else 1)


@contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file already existed with a wider mode
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        yield handle


@app.command()
def purge(
    retention_days: Annotated[
        int | None,
        typer.Option(
            min=1, max=36500, help="Keep this many days (default: VOICE_AGENT_AUDIT_RETENTION_DAYS)."
        ),
    ] = None,
) -> None:
    """Delete events past retention from the start of the chain; the purge itself is audited."""
    settings = load_settings()
    days = retention_days or settings.audit_retention_days
    with _trail(settings) as trail:
        try:
            report = trail.purge(datetime.now(UTC), days, _service(settings))
        except AuditIntegrityError as exc:
            typer.echo(f"Purge refused: {exc}", err=True)
            for line in exc.report.lines() if exc.report else ():
                typer.echo(line, err=True)
            raise typer.Exit(1) from None
    typer.echo(
        f"Purged {report.purged_count} events recorded before {report.cutoff.isoformat()} "
        f"(retention {days} days; chain now anchored at seq {report.purged_through_seq}); "
        f"the purge is recorded as seq {report.event_seq}."
    )


@app.command()
def keygen(
    key_file: Annotated[
        Path | None, typer.Option(help="Key file (default: VOICE_AGENT_AUDIT_KEY_FILE).")
    ] = None,
    key_id: Annotated[str | None, typer.Option(help="Id for the new key (default: time-stamped).")] = None,
) -> None:
    """Add a new random key and make it the active one (older keys stay, so old events still decrypt)."""
    settings = load_settings()
    path = key_file or settings.audit_key_path
    if path is None:
        typer.echo("Name the key file: --key-file PATH or VOICE_AGENT_AUDIT_KEY_FILE.", err=True)
        raise typer.Exit(2)
    try:
        new_id = generate_key_file(path, key_id)
    except KeyringError as exc:
        typer.echo(str(explain(exc)), err=True)  # names the setting
        raise typer.Exit(2) from None
    typer.echo(f"Added audit key {new_id} to {path}; it is now the active key. Back this file up.")
