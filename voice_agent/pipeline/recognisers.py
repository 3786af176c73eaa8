"""Speech-to-text engines behind one small interface, chosen by ``settings.stt_engine``.

A :class:`Recogniser` turns one finished caller turn (16 kHz mono int16 PCM) into text. It blocks, so the
pipeline calls it through ``asyncio.to_thread``; one instance serves every call of the process, so it must
be thread-safe (both engines here keep no state between calls: each call's decoding state is local).

- :class:`WhisperRecogniser`: faster-whisper (CTranslate2), tiny.en or base; primed with the clinic's
  vocabulary; ``window_seconds`` trims Whisper's 30 s window (the encoder cost follows the window, not the
  speech); segments Whisper marks as probably not speech are dropped.
- :class:`MoonshineRecogniser`: Moonshine base-en on onnxruntime, greedy decoding with a key/value cache.
  Its cost grows with the turn's length (no padding to a window). Moonshine was not trained with a text
  prompt, so the vocabulary is not used. Our own ~80-line runner rather than ``useful-moonshine-onnx``:
  that package hard-requires numba, librosa and huggingface-hub (which cannot be left out of a normal
  dependency) and opens its sessions with no thread limit; the decoding loop is the same.

docs/speech_models.md compares them through the telephone (8 kHz μ-law) on several caller voices.
"""

from __future__ import annotations

import math
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import onnxruntime
    from faster_whisper import WhisperModel

    from voice_agent.pipeline.stt import Vocabulary

SAMPLE_RATE: Final = 16_000
#: Segments Whisper itself marks as probably not speech are dropped (noise, breathing, hold music).
NO_SPEECH_PROBABILITY: Final = 0.6


class Recogniser(Protocol):
    def transcribe(self, pcm16: bytes, *, vocabulary: Vocabulary) -> str:
        """One blocking pass over 16 kHz mono int16 PCM; thread-safe."""
        ...


def _float_audio(pcm16: bytes) -> npt.NDArray[np.float32]:
    return np.frombuffer(pcm16, dtype="<i2").astype(np.float32) / 32768.0


class WhisperRecogniser:
    """faster-whisper over the process's one model (CTranslate2 serialises or pools the passes itself)."""

    def __init__(self, model: WhisperModel, *, beam_size: int, window_seconds: int = 30) -> None:
        self.model = model
        self.beam_size = beam_size
        self.window_seconds = window_seconds

    def transcribe(self, pcm16: bytes, *, vocabulary: Vocabulary) -> str:
        segments, _ = self.model.transcribe(
            _float_audio(pcm16),
            language="en",
            beam_size=self.beam_size,
            hotwords=vocabulary.hotwords,
            initial_prompt=vocabulary.initial_prompt,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,  # Silero already cut the turn
            chunk_length=self.window_seconds,
        )
        # ``segments`` is lazy: decoding happens while it is consumed, so consume it here, in the thread.
        return " ".join(s.text.strip() for s in segments if s.no_speech_prob < NO_SPEECH_PROBABILITY).strip()


class MoonshineRecogniser:
    """Moonshine (encoder + merged decoder ``.ort`` files, ``tokenizer.bin``) on onnxruntime.

    ``tokens_per_second`` caps the output by the audio's length: a greedy decoder that starts repeating
    itself would otherwise run to the model's limit (English speech is about 3 tokens a second).
    ``concurrency`` passes may run at once (like ``stt_concurrency`` for Whisper), each on ``threads``.
    """

    #: The longest piece the model takes in one pass (it accepts 0.1 s to 64 s); longer turns are split.
    MAX_PIECE_SECONDS: Final = 30
    _START, _END, _SPECIAL_FROM = 1, 2, 32_000  # <s>, </s>; ids from 32000 on are special tokens

    def __init__(
        self, model_dir: Path, *, threads: int = 2, concurrency: int = 1, tokens_per_second: float = 6.0
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle threads sleep rather than spin: a pass is ~20 small decoder steps, and on a shared 2-core
        # worker spinning only burns CPU another call needs (same wall time, ~15% less CPU measured).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self._encoder: onnxruntime.InferenceSession = ort.InferenceSession(
            str(model_dir / "encoder_model.ort"), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._decoder: onnxruntime.InferenceSession = ort.InferenceSession(
            str(model_dir / "decoder_model_merged.ort"),
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self._tokens = _read_tokenizer(model_dir / "tokenizer.bin")
        self._tokens_per_second = tokens_per_second
        self._slots = threading.BoundedSemaphore(concurrency)
        # The cache's inputs and their shapes come from the graph: past_key_values.<layer>.<decoder|encoder>
        # .<key|value>, each [batch, heads, length, head_dim]; present.<...> are the same, one step on.
        self._past: dict[str, tuple[int, int]] = {}
        for node in self._decoder.get_inputs():
            if node.name.startswith("past_key_values."):
                self._past[node.name] = (int(node.shape[1]), int(node.shape[3]))
        self._present = {
            node.name: "past_key_values." + node.name.removeprefix("present.")
            for node in self._decoder.get_outputs()
            if node.name.startswith("present.")
        }

    def transcribe(self, pcm16: bytes, *, vocabulary: Vocabulary) -> str:
        audio = _float_audio(pcm16)
        piece = self.MAX_PIECE_SECONDS * SAMPLE_RATE
        texts = []
        with self._slots:
            for start in range(0, len(audio), piece):
                chunk = audio[start : start + piece]
                if len(chunk) > SAMPLE_RATE // 10:  # the model needs more than 0.1 s
                    texts.append(self._decode(self._generate(chunk)))
        return " ".join(t for t in texts if t)

    def _generate(self, audio: npt.NDArray[np.float32]) -> list[int]:
        limit = max(4, math.ceil(len(audio) / SAMPLE_RATE * self._tokens_per_second))
        (hidden,) = self._encoder.run(["last_hidden_state"], {"input_values": audio[None, :]})
        past = {name: np.zeros((1, heads, 0, dim), np.float32) for name, (heads, dim) in self._past.items()}
        outputs = ["logits", *self._present]
        token, tokens = self._START, []
        for step in range(limit):
            logits, *presents = self._decoder.run(
                outputs,
                {
                    "input_ids": np.array([[token]], dtype=np.int64),
                    "encoder_hidden_states": hidden,
                    "use_cache_branch": np.array([step > 0]),
                    **past,
                },
            )
            token = int(logits[0, -1].argmax())
            if token == self._END:
                break
            tokens.append(token)
            # The encoder's keys and values are computed on the first step only and then kept.
            for name, value in zip(self._present.values(), presents, strict=True):
                if step == 0 or ".decoder." in name:
                    past[name] = value
        return tokens

    def _decode(self, tokens: list[int]) -> str:
        pieces = b"".join(
            self._tokens[t] for t in tokens if self._END < t < min(self._SPECIAL_FROM, len(self._tokens))
        )
        return pieces.replace("▁".encode(), b" ").decode("utf-8", errors="replace").strip()


def _read_tokenizer(path: Path) -> list[bytes]:
    """Moonshine's ``tokenizer.bin``: each token id's bytes in id order, each preceded by its length (one
    byte, or two when the first has its high bit set: the low 7 bits, then the next byte's value * 128).
    The same 32,000 tokens as the model's SentencePiece ``tokenizer.json``, its byte-fallback tokens
    already as raw bytes, so decoding is: concatenate, "▁" to a space, read as UTF-8."""
    data = path.read_bytes()
    tokens: list[bytes] = []
    at = 0
    while at < len(data):
        length = data[at]
        at += 1
        if length & 0x80:
            length = (length & 0x7F) | (data[at] << 7)
            at += 1
        tokens.append(data[at : at + length])
        at += length
    return tokens
