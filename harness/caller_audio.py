"""Caller speech made at test time, so voice tests and benchmarks need no recordings of real people.

Synthetic voices that sound nothing alike: espeak-ng (formant synthesis, robotic, the harder one for
Whisper), flite's voices (Debian's ``flite``: "slt" and "awb" and "rms" are unit-selection-like cluster
voices of three real speakers, "kal" an 8 kHz diphone voice) and piper's en_US joe voice (neural, close to
a clear human caller; also the agent's own voice, so only a reference). All come back as what the voice
pipeline consumes: 16 kHz mono signed 16-bit little-endian PCM. ``to_ulaw_8k`` turns that into what a
Twilio media stream carries, so a test can also hear the caller through the telephone; ``with_gain`` and
``with_noise`` make a quiet or a hot (clipping) caller and a noisy line, seeded, so runs repeat.

piper is GPL-3.0-or-later, so it is only ever run as its own CLI in a subprocess, never imported. Audio is
cached in memory per (voice, text); nothing is written to the repository, and temporary files are deleted.
"""

from __future__ import annotations

import io
import subprocess
import sys
import tempfile
import wave
from pathlib import Path
from typing import Literal

import numpy as np
import numpy.typing as npt
import soxr

from voice_agent.pipeline.speech_loader import default_voice_path

SAMPLE_RATE = 16_000
TELEPHONE_RATE = 8_000

#: Synthesised audio by (voice, text): piper costs a process start, and with its noise on its voice varies
#: from run to run, so the cache also keeps one utterance the same within a test session.
_CACHE: dict[tuple[str, str], bytes] = {}

# ---------------------------------------------------------------------------------------------- voices


def espeak(text: str, *, voice: str = "en-us", rate: int = 165) -> bytes:
    """``text`` spoken by espeak-ng (``rate`` in words per minute), as 16 kHz mono int16 PCM."""
    key = (f"espeak-ng:{voice}:{rate}", text)
    if key not in _CACHE:
        # Text on stdin, not argv: an utterance starting with "-" would be read as an option.
        done = subprocess.run(
            ["espeak-ng", "--stdout", "-v", voice, "-s", str(rate)],
            input=_one_line(text).encode(),
            capture_output=True,
            check=True,
        )
        pcm, source_rate = _read_wav(done.stdout)
        _CACHE[key] = resample(pcm, source_rate, SAMPLE_RATE)
    return _CACHE[key]


def flite(text: str, *, voice: str = "slt") -> bytes:
    """``text`` spoken by flite (``flite -lv`` lists the voices: kal, kal16, awb, rms, slt), as 16 kHz
    mono int16 PCM (kal speaks at 8 kHz and is resampled up)."""
    key = (f"flite:{voice}", text)
    if key not in _CACHE:
        with tempfile.TemporaryDirectory(prefix="caller-audio-") as out:
            wav = Path(out) / "speech.wav"
            # -t: the next argument is the text, even one that starts with "-".
            subprocess.run(
                ["flite", "-voice", voice, "-t", _one_line(text), "-o", str(wav)],
                capture_output=True,
                check=True,
            )
            pcm, source_rate = _read_wav(wav.read_bytes())
        _CACHE[key] = resample(pcm, source_rate, SAMPLE_RATE)
    return _CACHE[key]


def piper(text: str, *, voice: Path | None = None, length_scale: float = 1.0, steady: bool = True) -> bytes:
    """``text`` spoken by piper (default: the pinned joe voice), as 16 kHz mono int16 PCM."""
    return piper_many([text], voice=voice, length_scale=length_scale, steady=steady)[0]


def piper_many(
    texts: list[str],
    *,
    voice: Path | None = None,
    length_scale: float = 1.0,
    steady: bool = True,
    noise_scale: float | None = None,
    noise_w_scale: float | None = None,
) -> list[bytes]:
    """Each of ``texts`` spoken by piper, in one subprocess for all of them. ``length_scale`` above 1
    speaks more slowly (1.3: about a third longer), below 1 faster. ``steady`` (the default) turns
    off piper's generator and phoneme-width noise, so a caller's line sounds the same on every run, one
    difference fewer between a local run and CI; with the noise on the voice varies, and Whisper tiny.en
    hears "Shall I" as "So I" in about one run in eight. The WER benchmark keeps the noise on.
    ``noise_scale`` and ``noise_w_scale`` (without ``steady``) set that noise instead of the voice's own
    (joe: 0.667 and 0.8): higher is a less even voice and rhythm, a caller other than the agent.

    Why: starting piper (Python, onnxruntime, the voice) costs about a second, synthesis a fifth of that,
    so a benchmark of a hundred utterances synthesises them in one run. piper writes one WAV per input
    line into a directory, named by a monotonic clock, so sorted names are input order.
    """
    model = voice or default_voice_path()
    if steady:
        noise_scale = noise_w_scale = 0.0
    voice_key = (
        f"piper:{model}"
        + (f":x{length_scale:g}" if length_scale != 1.0 else "")
        + (":steady" if steady else "")
        + (f":noise{noise_scale:g}" if noise_scale is not None and not steady else "")
        + (f":noisew{noise_w_scale:g}" if noise_w_scale is not None and not steady else "")
    )
    missing = list(dict.fromkeys(t for t in texts if (voice_key, t) not in _CACHE))
    if missing:
        lines = [_one_line(t) for t in missing]
        options = ["--length-scale", f"{length_scale:g}"] if length_scale != 1.0 else []
        if noise_scale is not None:
            options += ["--noise-scale", f"{noise_scale:g}"]
        if noise_w_scale is not None:
            options += ["--noise-w-scale", f"{noise_w_scale:g}"]
        with tempfile.TemporaryDirectory(prefix="caller-audio-") as out:
            subprocess.run(
                [sys.executable, "-m", "piper", "--model", str(model), "--output-dir", out, *options],
                input="\n".join(lines).encode() + b"\n",
                capture_output=True,
                check=True,
            )
            files = sorted(Path(out).glob("*.wav"), key=lambda p: int(p.stem))
            if len(files) != len(missing):
                raise RuntimeError(f"piper wrote {len(files)} files for {len(missing)} lines")
            for text, file in zip(missing, files, strict=True):
                pcm, source_rate = _read_wav(file.read_bytes())
                _CACHE[(voice_key, text)] = resample(pcm, source_rate, SAMPLE_RATE)
    return [_CACHE[(voice_key, t)] for t in texts]


def clear_cache() -> None:
    _CACHE.clear()


# ---------------------------------------------------------------------------------------------- audio


def silence(seconds: float, rate: int = SAMPLE_RATE) -> bytes:
    """Digital silence, e.g. the pause a caller leaves between turns."""
    return bytes(round(seconds * rate) * 2)


def resample(pcm: bytes, source_rate: int, target_rate: int) -> bytes:
    """Mono int16 PCM from one rate to another (soxr, the resampler pipecat itself uses)."""
    if source_rate == target_rate:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2")
    out = np.asarray(soxr.resample(samples, source_rate, target_rate), dtype="<i2")
    return out.tobytes()


def with_gain(pcm: bytes, db: float) -> bytes:
    """The caller ``db`` louder (negative: quieter), clipped to 16 bits as a hot line clips: -15 is a
    quiet caller far from the phone, +6 a loud one on a hot line (every peak above -6 dBFS clips)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64) * 10 ** (db / 20)
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def speech_power(pcm: bytes, rate: int = SAMPLE_RATE) -> float:
    """Mean square of the speech alone: over the 20 ms frames within 40 dB of the loudest (the pauses
    and the silence around an utterance do not count, as in an active speech level)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    frame = rate // 50
    frames = samples[: len(samples) // frame * frame].reshape(-1, frame)
    if not len(frames):
        return 0.0
    power = np.mean(frames**2, axis=1)
    active = power[power >= power.max() * 1e-4]
    return float(np.mean(active)) if len(active) else 0.0


def noise(samples: int, *, kind: Literal["white", "pink"] = "pink", seed: int = 0) -> npt.NDArray[np.float64]:
    """Unit-power noise, the same for the same seed: white (flat) or pink (-3 dB an octave, the usual
    stand-in for a room, a street or a car)."""
    rng = np.random.default_rng(seed)
    white = rng.standard_normal(samples)
    if kind == "white":
        return white
    spectrum = np.fft.rfft(white)
    frequencies = np.arange(len(spectrum), dtype=np.float64)
    frequencies[0] = 1.0  # no infinite gain at DC
    shaped = np.fft.irfft(spectrum / np.sqrt(frequencies), n=samples)
    return np.asarray(shaped / np.sqrt(np.mean(shaped**2)), dtype=np.float64)


def with_noise(pcm: bytes, snr_db: float, *, kind: Literal["white", "pink"] = "pink", seed: int = 0) -> bytes:
    """``pcm`` with noise ``snr_db`` below its speech level (``speech_power``) over its whole length,
    clipped to 16 bits. 20 dB is a quiet room, 10 dB a busy street or a car."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    added = noise(len(samples), kind=kind, seed=seed) * np.sqrt(speech_power(pcm) / 10 ** (snr_db / 10))
    noisy: bytes = np.clip(np.round(samples + added), -32768, 32767).astype("<i2").tobytes()
    return noisy


def write_wav(path: Path | str, pcm: bytes, rate: int = SAMPLE_RATE) -> None:
    """Mono 16-bit WAV, for listening to what a failing test heard (write it under ``tmp_path``)."""
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)


def to_ulaw_8k(pcm16k: bytes) -> bytes:
    """16 kHz int16 PCM as 8 kHz G.711 μ-law, the payload of a Twilio media stream.

    numpy, not ``audioop`` (deprecated, gone in Python 3.13; pipecat's ``pcm_to_ulaw`` wraps it).
    """
    return ulaw_encode(resample(pcm16k, SAMPLE_RATE, TELEPHONE_RATE))


def from_ulaw_8k(ulaw: bytes) -> bytes:
    """8 kHz G.711 μ-law back to 16 kHz int16 PCM: what the agent hears from a telephone caller."""
    return resample(ulaw_decode(ulaw), TELEPHONE_RATE, SAMPLE_RATE)


def ulaw_encode(pcm: bytes) -> bytes:
    """int16 PCM to μ-law at the same rate (G.711, bit-exact with ``audioop.lin2ulaw``)."""
    return _ULAW_ENCODE[np.frombuffer(pcm, dtype="<i2").view(np.uint16)].tobytes()


def ulaw_decode(ulaw: bytes) -> bytes:
    """μ-law to int16 PCM at the same rate (G.711, bit-exact with ``audioop.ulaw2lin``)."""
    return _ULAW_DECODE[np.frombuffer(ulaw, dtype=np.uint8)].astype("<i2").tobytes()


# ---------------------------------------------------------------------------------------------- internals


def _one_line(text: str) -> str:
    """Both CLIs take one utterance per line; an empty one would be skipped and shift the rest."""
    line = " ".join(text.split())
    if not line:
        raise ValueError("nothing to say")
    return line


def _read_wav(data: bytes) -> tuple[bytes, int]:
    """PCM and rate of a mono 16-bit WAV. espeak-ng's ``--stdout`` header claims ~2 GB of frames (it
    streams), so read to the end of the data rather than trusting the length."""
    with wave.open(io.BytesIO(data), "rb") as wav:
        if wav.getnchannels() != 1 or wav.getsampwidth() != 2:
            raise ValueError("expected mono 16-bit audio")
        rate = wav.getframerate()
        pcm = wav.readframes(wav.getnframes())
    return pcm[: len(pcm) // 2 * 2], rate


_ULAW_BIAS = 0x84


def _ulaw_tables() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int16]]:
    """The G.711 μ-law encode table (all 65,536 int16 values, indexed as uint16) and decode table.

    The encoder is CPython's ``audioop`` one (Sun's 14-bit G.711 code) so that tests hear exactly what
    pipecat's ``pcm_to_ulaw`` would send.
    """
    linear = np.arange(-32768, 32768, dtype=np.int32)
    fourteen = linear >> 2  # floor, as in C on a two's complement int
    mask = np.where(fourteen < 0, 0x7F, 0xFF)
    magnitude = np.minimum(np.abs(fourteen), 8159) + (_ULAW_BIAS >> 2)
    segment = np.floor(np.log2(magnitude)).astype(np.int32) - 5  # 0..8, 8 only for the clipped maximum
    quantised = (segment << 4) | ((magnitude >> (segment + 1)) & 0x0F)
    codes = (np.where(segment >= 8, 0x7F, quantised) ^ mask).astype(np.uint8)
    encode = np.empty(65536, dtype=np.uint8)
    encode[linear.astype(np.int16).view(np.uint16)] = codes

    inverted = ~np.arange(256, dtype=np.int32) & 0xFF
    value = (((inverted & 0x0F) << 3) + _ULAW_BIAS) << ((inverted >> 4) & 0x07)
    decode = np.where(inverted & 0x80, _ULAW_BIAS - value, value - _ULAW_BIAS).astype(np.int16)
    return encode, decode


_ULAW_ENCODE, _ULAW_DECODE = _ulaw_tables()
