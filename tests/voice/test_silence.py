"""A caller who goes quiet: after a pause the agent asks "Are you still there?", and after unanswered
prompts it says goodbye and ends the call (recorded as a timeout). Its own server, with short pauses."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from harness.sandbox import Sandbox
from harness.scripted import hear_until
from harness.twilio_caller import TwilioCaller
from harness.voice_server import VoiceServer, start_voice_server, stop_voice_server
from voice_agent.audit import AuditTrail, Keyring

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

#: "Are you still there?"; then "I haven't heard anything for a while, ... Please call again anytime.
#: Goodbye." (tiny.en may hear "Goodbye." as "Bye bye." or drop it).
STILL_THERE = r"still there"
FAREWELL = r"call again|bye\b"


@pytest.fixture(scope="module")
def quick_to_prompt(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    server = start_voice_server(
        sandbox,
        tmp_path_factory.mktemp("silence") / "product",
        VOICE_AGENT_SILENCE_PROMPT_SECONDS="3",
        VOICE_AGENT_SILENCE_PROMPTS_BEFORE_HANGUP="1",
    )
    try:
        yield server
    finally:
        stop_voice_server(server)


async def test_a_silent_caller_is_prompted_then_let_go(
    quick_to_prompt: VoiceServer, whisper: WhisperModel
) -> None:
    async with TwilioCaller(
        f"{quick_to_prompt.ws_url}/telephony/twilio", quick_to_prompt.ssl_context()
    ) as call:
        started = time.monotonic()
        await call.agent_turn(after=started, quiet=1.5)  # the greeting
        greeting_done = time.monotonic()
        prompt = await call.agent_turn(after=greeting_done, quiet=1.5, timeout=30)
        heard_prompt = await asyncio.to_thread(hear_until, whisper, prompt, STILL_THERE)
        farewell = await call.agent_turn(after=time.monotonic(), quiet=1.5, timeout=30)
        heard_farewell = await asyncio.to_thread(hear_until, whisper, farewell, FAREWELL)
        for _ in range(100):
            if call.closed_at is not None:
                break
            await asyncio.sleep(0.1)
    assert re.search(STILL_THERE, heard_prompt, re.IGNORECASE), heard_prompt
    assert re.search(FAREWELL, heard_farewell, re.IGNORECASE), heard_farewell
    assert call.closed_at is not None  # the agent hung up

    keyring = Keyring.from_file(quick_to_prompt.product / "audit.key")
    with AuditTrail.open(quick_to_prompt.env["VOICE_AGENT_AUDIT_DATABASE_URL"], keyring) as trail:
        now = datetime.now(UTC)
        events = [row["event"] for row in trail.export(now - timedelta(hours=1), now + timedelta(hours=1))]
    assert [e["end_reason"] for e in events if e["action"] == "session.end"] == ["timeout"]
