"""``voice-agent inventory``: the PHI inventory and data-flow map of this configuration."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from voice_agent.cli.common import load_settings
from voice_agent.inventory import build_inventory, render


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"
    MERMAID = "mermaid"


def inventory(
    format: Annotated[
        Format, typer.Option("--format", help="text (a list), json (docs/inventory.md), mermaid (a diagram).")
    ] = Format.TEXT,
    output: Annotated[
        Path | None, typer.Option("--output", help="Write to this file instead of standard output.")
    ] = None,
    workers: Annotated[
        int, typer.Option(min=1, max=256, help="How many workers run these same settings (the diagram).")
    ] = 1,
) -> None:
    """The PHI inventory and data-flow map of these settings (docs/inventory.md).

    Every component that creates, receives, keeps or sends PHI, from the settings `serve` would load: what
    crosses each boundary, the controls on it, and findings where a setting is weaker than its safe
    default. Reads settings only: no file, database or network is touched, no secret is printed."""
    settings = load_settings()
    rendered = render(build_inventory(settings, workers=workers), format.value)
    if output is None:
        typer.echo(rendered, nl=False)
        return
    output.write_text(rendered, encoding="utf-8")
    typer.echo(f"Wrote the inventory ({format.value}) to {output}", err=True)
