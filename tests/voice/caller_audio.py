"""Caller speech made at test time, so voice tests and benchmarks need no recordings of real people.

Two synthetic voices that sound nothing alike: espeak-ng (formant synthesis, robotic, the harder one for
Whisper) and piper's en_US joe voice (neural, close to a clear human caller). Both come back as what the
voice pipeline consumes: 16 kHz mono signed 16-bit little-endian PCM. ``to_ulaw_8k`` turns that into what
a Twilio media stream carries, so a test can also hear the caller through the telephone.

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

import numpy as np
import numpy.typing as npt
import soxr

from voice_agent.pipeline.models import default_voice_path

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


def piper(text: str, *, voice: Path | None = None, length_scale: float = 1.0, steady: bool = True) -> bytes:
    """``text`` spoken by piper (default: the pinned joe voice), as 16 kHz mono int16 PCM."""
    return piper_many([text], voice=voice, length_scale=length_scale, steady=steady)[0]


def piper_many(
    texts: list[str], *, voice: Path | None = None, length_scale: float = 1.0, steady: bool = True
) -> list[bytes]:
    """Each of ``texts`` spoken by piper, in one subprocess for all of them. ``length_scale`` above 1
    speaks more slowly (1.3: about a third longer), below 1 faster. ``steady`` (the default) turns
    off piper's generator and phoneme-width noise, so a caller's line sounds the same on every run, one
    difference fewer between a local run and CI; with the noise on the voice varies, and Whisper tiny.en
    hears "Shall I" as "So I" in about one run in eight. The WER benchmark keeps the noise on.

    Why: starting piper (Python, onnxruntime, the voice) costs about a second, synthesis a fifth of that,
    so a benchmark of a hundred utterances synthesises them in one run. piper writes one WAV per input
    line into a directory, named by a monotonic clock, so sorted names are input order.
    """
    model = voice or default_voice_path()
    voice_key = (
        f"piper:{model}"
        + (f":x{length_scale:g}" if length_scale != 1.0 else "")
        + (":steady" if steady else "")
    )
    missing = list(dict.fromkeys(t for t in texts if (voice_key, t) not in _CACHE))
    if missing:
        lines = [_one_line(t) for t in missing]
        options = ["--length-scale", f"{length_scale:g}"] if length_scale != 1.0 else []
        if steady:
            options += ["--noise-scale", "0", "--noise-w-scale", "0"]
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
