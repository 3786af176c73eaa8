"""Barge-in: a caller who speaks over the agent stops it, and the dialogue answers what they said.

Measured as the caller hears it: the agent's audio is played back the way a carrier plays it (in
order, never early; a ``clear`` drops what was buffered), and the caller's speech onset is the first
loud sample of what they sent.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from harness import caller_audio
from harness.scripted import hear_until
from harness.twilio_caller import TwilioCaller, leading_silence
from harness.voice_server import VoiceServer

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

#: The issue's bound: the agent stops within 300 ms of the caller's speech start.
STOP_WITHIN = 0.3


async def test_speaking_over_the_greeting_stops_it_and_is_answered(
    voice_server: VoiceServer, whisper: WhisperModel
) -> None:
    line = await asyncio.to_thread(caller_audio.piper, "I need to cancel my appointment.")
    async with TwilioCaller(f"{voice_server.ws_url}/telephony/twilio", voice_server.ssl_context()) as call:
        # wait until the greeting (about eight seconds of speech) has been playing for two seconds
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            first = call.first_audio_after(0.0)
            if first is not None and time.monotonic() - first > 2.0:
                break
            await asyncio.sleep(0.05)
        await call.say(line)
        assert call.speech_started is not None
        onset = call.speech_started + leading_silence(line)
        reply = await call.agent_turn(after=onset + 1.0, quiet=1.2)
        stopped = call.agent_stopped_after(onset)

    assert stopped is not None
    talked_over = stopped - onset
    assert talked_over <= STOP_WITHIN, f"the agent kept talking {talked_over * 1000:.0f} ms over the caller"
    # the greeting was cut short (it would have run some eight seconds) ...
    greeting = [s for s, _, loud in call.played() if loud and s < stopped]
    assert greeting and greeting[-1] - greeting[0] < 6.0
    # ... and the dialogue heard the interruption: cancelling starts with identity
    heard = await asyncio.to_thread(hear_until, whisper, reply, "name")
    assert "name" in heard.lower(), heard
