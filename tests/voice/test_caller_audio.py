"""The synthetic callers are worth testing with: Whisper understands them, and the telephone encoding
(8 kHz μ-law, what Twilio carries) loses little. Real espeak-ng, piper and Whisper; no mocks."""

from __future__ import annotations

import re
import warnings
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from harness import caller_audio
from harness.real_parts import needs
from voice_agent.pipeline.speech_loader import SpeechModels
from voice_agent.pipeline.stt import transcribe
from voice_agent.settings import Settings

pytestmark = needs("espeak-ng")

SENTENCE = "Hi, I would like to book an appointment for next Tuesday morning."
VOICES: dict[str, Callable[[str], bytes]] = {"espeak-ng": caller_audio.espeak, "piper": caller_audio.piper}


@pytest.fixture(scope="module")
def heard() -> Callable[[bytes], set[str]]:
    """The words the project's default speech-to-text hears in 16 kHz PCM, framed like a turn."""
    settings = Settings()
    model = SpeechModels(settings).whisper()

    def words(pcm: bytes) -> set[str]:
        turn = caller_audio.silence(0.3) + pcm + caller_audio.silence(0.5)
        text = transcribe(model, turn, beam_size=settings.stt_beam_size)
        return set(re.findall(r"[a-z]+", text.lower()))

    return words


def snr_db(reference: np.ndarray, degraded: np.ndarray) -> float:
    reference = reference.astype(np.float64)
    noise = degraded.astype(np.float64) - reference
    return float(10 * np.log10(np.sum(reference**2) / max(np.sum(noise**2), 1.0)))


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2")


@pytest.mark.parametrize("voice", VOICES)
def test_each_voice_is_16k_speech_whisper_understands(voice: str, heard: Callable[[bytes], set[str]]) -> None:
    pcm = VOICES[voice](SENTENCE)
    assert len(pcm) % 2 == 0
    assert 2.0 < len(pcm) / 2 / caller_audio.SAMPLE_RATE < 8.0  # ~4 s of speech at 16 kHz, not 22 kHz
    assert np.sqrt(np.mean(samples(pcm).astype(np.float64) ** 2)) > 500  # audible, not silence
    assert {"appointment", "tuesday", "morning"} <= heard(pcm)


def test_speech_survives_the_telephone(heard: Callable[[bytes], set[str]]) -> None:
    """What a Twilio caller's agent hears: 8 kHz μ-law, decoded and resampled back to 16 kHz."""
    pcm = caller_audio.piper(SENTENCE)
    ulaw = caller_audio.to_ulaw_8k(pcm)
    assert len(ulaw) == pytest.approx(len(pcm) / 4, abs=2)  # one byte per 8 kHz sample
    back = caller_audio.from_ulaw_8k(ulaw)
    assert len(back) == pytest.approx(len(pcm), abs=8)
    # Against the same audio band-limited to 4 kHz, μ-law adds only its quantisation noise (~38 dB).
    band_limited = caller_audio.resample(caller_audio.resample(pcm, 16_000, 8_000), 8_000, 16_000)
    n = min(len(band_limited), len(back)) // 2
    assert snr_db(samples(band_limited)[:n], samples(back)[:n]) > 30
    assert {"appointment", "tuesday"} <= heard(back)


def test_ulaw_round_trip_error_is_within_one_quantisation_step() -> None:
    every = np.arange(-32768, 32768, dtype="<i2")
    back = samples(caller_audio.ulaw_decode(caller_audio.ulaw_encode(every.tobytes())))
    error = np.abs(back.astype(np.int32) - every.astype(np.int32))
    # G.711 steps double per segment, from 8 (after the 14-bit cut) to 1024 at full scale.
    assert np.all(error <= np.maximum(8, np.abs(every.astype(np.int32)) // 16 + 4))
    speech = caller_audio.piper(SENTENCE)
    assert snr_db(samples(speech), samples(caller_audio.ulaw_decode(caller_audio.ulaw_encode(speech)))) > 30


def test_ulaw_matches_the_g711_reference() -> None:
    """Bit-exact with CPython's audioop (what pipecat's Twilio serializer uses) while it still exists."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")
    every = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert caller_audio.ulaw_encode(every) == audioop.lin2ulaw(every, 2)
    assert caller_audio.ulaw_decode(bytes(range(256))) == audioop.ulaw2lin(bytes(range(256)), 2)


def test_synthesis_is_cached_in_memory() -> None:
    first = caller_audio.espeak("Yes, that's right.")
    assert caller_audio.espeak("Yes, that's right.") is first
    assert caller_audio.espeak("Yes, that's right.", rate=120) is not first


def test_silence_and_wav(tmp_path: Path) -> None:
    assert caller_audio.silence(0.5) == bytes(16_000)
    pcm = caller_audio.espeak("Okay.")
    caller_audio.write_wav(tmp_path / "okay.wav", pcm)
    with wave.open(str(tmp_path / "okay.wav"), "rb") as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16_000)
        assert wav.readframes(wav.getnframes()) == pcm


@needs("flite")
@pytest.mark.parametrize("voice", ["slt", "kal", "awb", "rms"])
def test_flite_voices_are_16k_speech_whisper_understands(
    voice: str, heard: Callable[[bytes], set[str]]
) -> None:
    pcm = caller_audio.flite(SENTENCE, voice=voice)
    assert 2.0 < len(pcm) / 2 / caller_audio.SAMPLE_RATE < 8.0  # kal speaks at 8 kHz: resampled up
    assert caller_audio.flite(SENTENCE, voice=voice) is pcm  # cached like the others
    assert {"appointment", "tuesday"} <= heard(pcm)


def test_noise_is_seeded_and_at_the_asked_level() -> None:
    speech = caller_audio.silence(0.5) + caller_audio.espeak("Next Tuesday at ten thirty.")
    noisy = caller_audio.with_noise(speech, 15, seed=3)
    assert noisy == caller_audio.with_noise(speech, 15, seed=3) != caller_audio.with_noise(speech, 15, seed=4)
    added = samples(noisy).astype(np.float64) - samples(speech)
    # Against the speech alone (its pauses and the lead-in do not count), not the whole clip.
    assert 10 * np.log10(caller_audio.speech_power(speech) / np.mean(added**2)) == pytest.approx(15, abs=0.1)
    white = caller_audio.noise(1 << 14, kind="white", seed=1)
    pink = caller_audio.noise(1 << 14, kind="pink", seed=1)
    low, high = (np.abs(np.fft.rfft(pink))[band].mean() for band in (slice(10, 100), slice(4000, 8000)))
    assert np.mean(pink**2) == pytest.approx(1, rel=0.01) and low > 5 * high  # -3 dB an octave
    assert np.mean(white**2) == pytest.approx(1, rel=0.05)


def test_level_change_makes_a_quiet_caller_and_clips_a_hot_one() -> None:
    speech = caller_audio.espeak("Yes, that's right.")
    peak = int(np.abs(samples(speech).astype(np.int32)).max())
    quiet = samples(caller_audio.with_gain(speech, -15)).astype(np.int32)
    assert np.abs(quiet).max() == pytest.approx(peak * 10 ** (-15 / 20), abs=1)
    hot = samples(caller_audio.with_gain(speech, 20)).astype(np.int32)
    assert np.abs(hot).max() == 32767 or hot.min() == -32768  # clipped, not wrapped around
    assert np.all(np.sign(hot) == np.sign(samples(speech)))
