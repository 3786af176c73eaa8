"""Shared CLI plumbing: settings that fail loudly and readably, and the process start-up every command
that touches PHI goes through."""

from __future__ import annotations

import logging

import typer
from pydantic import ValidationError

from voice_agent.privacy import configure_logging, harden_process
from voice_agent.settings import Settings

log = logging.getLogger("voice_agent")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"  {'VOICE_AGENT_' + where if where else 'settings'}: {err['msg']}")
        typer.echo("Invalid settings; the agent will not start:\n" + "\n".join(lines), err=True)
        raise typer.Exit(2) from None


def bootstrap() -> Settings:
    """Settings, then no core dumps and owner-only files, then one redacting log set-up, in that order,
    before anything can log or write."""
    settings = load_settings()
    report = harden_process()
    configure_logging(settings)
    log.info("process hardened: %s", report.summary())
    return settings
