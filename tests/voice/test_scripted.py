"""The scripted caller's own ears and mouth: each way it hears the agent hears a whole reply, a line it
says reaches the carrier whole, and a line said slowly is slower. Real piper and Whisper; no mocks."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest

from harness import caller_audio
from harness.scripted import HEARINGS, SLOW_LENGTH_SCALE, hear, hear_until, pieces_of
from harness.twilio_caller import as_carried, frames_of
from voice_agent.pipeline.speech_loader import SpeechModels
from voice_agent.pipeline.stt import Vocabulary
from voice_agent.settings import Settings

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

#: A reply shaped like the agent's slot confirmation: a long sentence, a pause, a short one.
FIRST, SECOND = "Doctor Amara Okafor, Tuesday the first at nine AM.", "Shall I book it?"


@pytest.fixture(scope="module")
def whisper() -> WhisperModel:
    return SpeechModels(Settings()).whisper()


@pytest.fixture(scope="module")
def reply() -> bytes:
    """The reply as the caller's phone plays it (8 kHz μ-law, back to 16 kHz), in piper's steady voice:
    these tests are about how the caller listens, not about how the voice varies."""
    first, second = caller_audio.piper_many([FIRST, SECOND])
    pcm = first + caller_audio.silence(0.4) + second + caller_audio.silence(0.5)
    return caller_audio.from_ulaw_8k(caller_audio.to_ulaw_8k(pcm))


def test_a_reply_is_split_at_its_pauses(reply: bytes, whisper: WhisperModel) -> None:
    pieces = pieces_of(reply)
    # the 0.4 s pause between the sentences splits; the comma's short pause does not
    assert len(pieces) == 2
    last = hear(whisper, pieces[-1], Vocabulary(), 0).lower()
    assert "shall i book" in last and "tuesday" not in last, last


@pytest.mark.parametrize("attempt", range(len(HEARINGS)))
def test_each_way_of_hearing_hears_the_whole_reply(attempt: int, reply: bytes, whisper: WhisperModel) -> None:
    heard = hear(whisper, reply, Vocabulary(), attempt).lower()
    assert "tuesday" in heard and "shall i book" in heard, heard


def test_hearing_stops_at_the_first_way_that_hears_what_is_wanted(
    reply: bytes, whisper: WhisperModel
) -> None:
    ways: list[str] = []

    def wanted(heard: str) -> bool:
        ways.append(heard)
        return len(ways) == 2

    hear_until(whisper, reply, wanted)
    assert len(ways) == 2
    assert "nothing like it" not in hear_until(whisper, reply, "nothing like it").lower()


async def test_a_line_reaches_the_carrier_whole() -> None:
    """pipecat's stream resampler keeps back the end of what it is given; the caller's line must not
    lose the end of its last word to that."""
    tone = (np.sin(np.arange(int(1.335 * 16_000)) / 5) * 8000).astype("<i2").tobytes()
    sent = loud_span(caller_audio.ulaw_decode(b"".join(await frames_of(tone))), caller_audio.TELEPHONE_RATE)
    assert sent[1] - sent[0] == pytest.approx(1.335, abs=0.01)
    start, end = loud_span(await as_carried(tone, after_silence=0.4), 16_000)
    assert start == pytest.approx(0.4, abs=0.02)
    assert end - start == pytest.approx(1.335, abs=0.01)


def loud_span(pcm: bytes, rate: int) -> tuple[float, float]:
    """(first, last) loud sample of ``pcm``, in seconds."""
    loud = np.flatnonzero(np.abs(np.frombuffer(pcm, dtype="<i2")) > 1000)
    return loud[0] / rate, loud[-1] / rate


def test_a_line_said_slowly_is_slower() -> None:
    text = "Marisol Fairbanks."
    slow = caller_audio.piper(text, length_scale=SLOW_LENGTH_SCALE)
    assert slow is caller_audio.piper(text, length_scale=SLOW_LENGTH_SCALE)  # cached as its own line
    assert len(slow) > 1.15 * len(caller_audio.piper(text))
