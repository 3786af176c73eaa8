"""A carrier stream that carries junk in the middle of a call: the junk is dropped and counted, and the
caller is still heard. (pipecat's serializers raise on some of these, and its receive loop ends at the
first exception: without the guard in ``ingress/telephony/carrier_messages.py`` the rest of the call goes
deaf.)"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from harness import caller_audio
from harness.scripted import hear_until
from harness.twilio_caller import TwilioCaller, leading_silence
from harness.voice_server import VoiceServer

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

JUNK: list[str | bytes] = [
    "null",
    "[]",
    '"media"',
    '{"event": "media", "media": 5}',
    '{"event": "media", "media": {"payload": 7}}',
    '{"event": 3}',
    '{"event": "dtmf", "dtmf": "1"}',
    "{not json",
    b"\x00\xff\xfe",
    '{"event": "media", "media": {"payload": "' + "A" * 70_000 + '"}}',
]


async def test_junk_on_the_stream_is_dropped_and_the_caller_is_still_heard(
    voice_server: VoiceServer, whisper: WhisperModel
) -> None:
    dropped = "voice_agent_carrier_messages_dropped_total"

    def count() -> float:
        try:
            return voice_server.metric(dropped, carrier="twilio")
        except AssertionError:  # none dropped yet
            return 0.0

    before = await asyncio.to_thread(count)
    line = await asyncio.to_thread(caller_audio.piper, "I need to cancel my appointment.")
    async with TwilioCaller(f"{voice_server.ws_url}/telephony/twilio", voice_server.ssl_context()) as call:
        await call.agent_turn(after=0.0, quiet=1.2)  # the greeting, to its end
        for message in JUNK:
            await call.send_raw(message)
        await call.say(line)
        assert call.speech_started is not None
        reply = await call.agent_turn(after=call.speech_started + leading_silence(line) + 1.0, quiet=1.2)
    heard = await asyncio.to_thread(hear_until, whisper, reply, "name")
    assert "name" in heard.lower(), heard  # cancelling starts with identity: it heard the caller
    assert await asyncio.to_thread(count) == before + len(JUNK)
