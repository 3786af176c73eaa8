"""Shared CLI plumbing: settings that fail loudly and readably."""

from __future__ import annotations

import typer
from pydantic import ValidationError

from voice_agent.settings import Settings


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = [
            f"  VOICE_AGENT_{'_'.join(str(p) for p in err['loc']).upper() or '(settings)'}: {err['msg']}"
            for err in exc.errors()
        ]
        typer.echo("Invalid settings; the agent will not start:\n" + "\n".join(lines), err=True)
        raise typer.Exit(2) from None
