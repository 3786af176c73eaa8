"""``voice-agent chat``: a call over standard input and output (see ``voice_agent.ingress.text``)."""

from __future__ import annotations

import asyncio
from typing import Literal

import typer

from voice_agent.cli.common import bootstrap
from voice_agent.dialogue.factory import conversations
from voice_agent.dialogue.understanding.hybrid import build_understanding, warm_understanding
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.ingress.text import run_call, stdin_lines, stdout_emit
from voice_agent.runtime import runtime
from voice_agent.settings import Settings

Mode = Literal["rules", "llm", "hybrid"]
MODES: dict[str, Mode] = {"rules": "rules", "llm": "llm", "hybrid": "hybrid"}


async def chat_call(settings: Settings, *, caller_id: str | None, mode: Mode) -> int:
    async with runtime(settings) as agent:
        understanding = build_understanding(mode, settings, RulesUnderstanding())
        await warm_understanding(understanding)
        await run_call(
            agent, conversations(agent), understanding, stdin_lines(), stdout_emit, caller_number=caller_id
        )
    return 0


def chat(
    caller_id: str | None = typer.Option(
        None, "--caller-id", help="The calling number, as a telephone would give it."
    ),
    understanding: str | None = typer.Option(
        None, "--understanding", help="rules | llm | hybrid (default: VOICE_AGENT_UNDERSTANDING, else rules)."
    ),
) -> None:
    """Talk to the agent in text: the greeting is one line, then one line in, one line out, per turn."""
    settings = bootstrap()
    mode = understanding or settings.understanding
    if mode not in MODES:
        typer.echo("--understanding must be rules, llm or hybrid", err=True)
        raise typer.Exit(2)
    raise typer.Exit(asyncio.run(chat_call(settings, caller_id=caller_id, mode=MODES[mode])))
