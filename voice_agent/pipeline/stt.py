"""Speech-to-text for a call: one Whisper pass per caller turn, not per pause.

Why not pipecat's ``SegmentedSTTService``/``WhisperSTTService``: they transcribe at every VAD stop, so
with the short VAD stop that smart-turn needs, a date of birth said as "March third ... nineteen
eighty" costs two Whisper passes (each ~0.45 s on 2 cores: faster-whisper pads every pass to 30 s) and
arrives in pieces. Here the smart-turn model judges each pause first; only a finished turn is
transcribed, in one pass over all of its audio. They also load a model per call and expose neither beam
size nor CPU threads. Everything else is pipecat's: the VAD frames come from its ``VADProcessor``, the
turn model is its smart-turn v3, and the turn frames this pushes are the ``Proposed...`` ones its
``UserTurnProcessor`` resolves (and turns into interruptions: barge-in).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from pipecat.audio.turn.base_turn_analyzer import EndOfTurnState
from pipecat.audio.turn.smart_turn.base_smart_turn import SmartTurnParams
from pipecat.audio.turn.smart_turn.local_smart_turn_v3 import LocalSmartTurnAnalyzerV3
from pipecat.frames.frames import (
    CancelFrame,
    DataFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    ProposedUserStartedSpeakingFrame,
    ProposedUserStoppedSpeakingFrame,
    StartFrame,
    SystemFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from voice_agent.privacy import CALLER_SPEECH

if TYPE_CHECKING:
    import onnxruntime
    from faster_whisper import WhisperModel

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
#: Audio kept from before the VAD fired (it fires ``vad_start_seconds`` into speech).
_PRE_ROLL_SECONDS = 0.5
#: Silence appended to a turn: Whisper garbles a last word cut off at the VAD stop. Free, since
#: faster-whisper pads every pass to 30 s anyway.
_TRAILING_SILENCE = bytes(int(0.3 * SAMPLE_RATE) * 2)
#: Pause put between a carried first part and the rest of an answer.
_JOIN_SILENCE = bytes(int(0.2 * SAMPLE_RATE) * 2)
#: Longest answer carried across turns (a phone number said in four pieces fits easily).
_MAX_CARRY_BYTES = 20 * SAMPLE_RATE * 2
#: Segments Whisper itself marks as probably not speech are dropped (noise, breathing, hold music).
_NO_SPEECH_PROBABILITY = 0.6


@dataclass
class CallerTurnFrame(DataFrame):
    """What the caller said in one finished turn (possibly nothing: noise that opened a turn).

    Not pipecat's ``TranscriptionFrame``: this one travels in order with the data frames (a turn's
    system frames overtake queued data frames), and its ``str`` - what any frame logger prints - holds
    a word count, never the words.
    """

    text: str = ""

    def __str__(self) -> str:
        return f"{self.name}(words: {len(self.text.split())})"


@dataclass
class ContinueTurnFrame(SystemFrame):
    """Upstream, from the dialogue: the turn just heard is the first part of an answer (a birth date
    without its year). ``True``: hear the next turn together with it, in one pass; ``False``: never
    mind (the caller said nothing more)."""

    carry: bool = True


@dataclass(frozen=True)
class Vocabulary:
    """What Whisper is told to expect: the clinic's practitioner names and visit types."""

    hotwords: str | None = None
    initial_prompt: str | None = None


def transcribe(
    model: WhisperModel,
    pcm16: bytes,
    *,
    beam_size: int,
    vocabulary: Vocabulary = Vocabulary(),
    window_seconds: int = 30,
) -> str:
    """One blocking Whisper pass over 16 kHz mono int16 audio (run it off the event loop)."""
    audio = np.frombuffer(pcm16, dtype=np.int16).astype(np.float32) / 32768.0
    segments, _ = model.transcribe(
        audio,
        language="en",
        beam_size=beam_size,
        hotwords=vocabulary.hotwords,
        initial_prompt=vocabulary.initial_prompt,
        condition_on_previous_text=False,
        without_timestamps=True,
        vad_filter=False,  # Silero already cut the turn
        chunk_length=window_seconds,
    )
    # ``segments`` is lazy: decoding happens while it is consumed, so consume it here, in the thread.
    return " ".join(s.text.strip() for s in segments if s.no_speech_prob < _NO_SPEECH_PROBABILITY).strip()


class SharedSmartTurn(LocalSmartTurnAnalyzerV3):
    """pipecat's smart-turn v3 analyzer on the process's one ONNX session (its state is per call, its
    model is not). Never writes caller audio to disk, whatever ``PIPECAT_SMART_TURN_LOG_DATA`` says."""

    def __init__(self, session: onnxruntime.InferenceSession, *, max_pause_seconds: float) -> None:
        # Skip LocalSmartTurnAnalyzerV3.__init__: it would load a second copy of the model.
        super(LocalSmartTurnAnalyzerV3, self).__init__(
            sample_rate=SAMPLE_RATE, params=SmartTurnParams(stop_secs=max_pause_seconds)
        )
        self._session = session
        self._log_data = False
        self.set_sample_rate(SAMPLE_RATE)


@dataclass(frozen=True)
class TurnHeard:
    """Timing of one transcribed turn, for the call's metrics (numbers only)."""

    speech_ended: float  # time.time() when the caller stopped speaking (VAD stop minus its window)
    turn_decided: float  # time.time() when the turn was judged finished
    transcribed: float  # time.time() when Whisper returned
    words: int


class TurnTranscriber(FrameProcessor):
    """VAD frames + audio in; per finished turn, one ``CallerTurnFrame`` and a proposed turn stop."""

    def __init__(
        self,
        *,
        whisper: WhisperModel,
        smart_turn: onnxruntime.InferenceSession,
        beam_size: int,
        max_pause_seconds: float,
        window_seconds: int = 30,
        vocabulary: Callable[[], Awaitable[Vocabulary]] | None = None,
        on_turn: Callable[[TurnHeard], None] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._whisper = whisper
        self._beam_size = beam_size
        self._window = window_seconds
        self._analyzer = SharedSmartTurn(smart_turn, max_pause_seconds=max_pause_seconds)
        self._vocabulary_source = vocabulary
        self._vocabulary = Vocabulary()
        self._on_turn = on_turn
        self._pre_roll: deque[bytes] = deque()
        self._pre_roll_bytes = 0
        self._turn = bytearray()
        self._previous = b""  # the last finished turn's audio, until the dialogue says it is whole
        self._carry = b""  # a first part the dialogue asked to hear again with the rest
        self._in_turn = False
        self._speaking = False
        self._speech_ended = 0.0
        self._pending: set[asyncio.Task[None]] = set()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            if self._vocabulary_source is not None:
                self._vocabulary = await self._vocabulary_source()
        elif isinstance(frame, InputAudioRawFrame):
            await self._on_audio(frame)
            await self.push_frame(frame, direction)
        elif isinstance(frame, VADUserStartedSpeakingFrame):
            await self.push_frame(frame, direction)
            await self._on_speech_started(frame)
        elif isinstance(frame, VADUserStoppedSpeakingFrame):
            await self.push_frame(frame, direction)
            await self._on_speech_stopped(frame)
        elif isinstance(frame, ContinueTurnFrame):
            self._carry = self._previous[-_MAX_CARRY_BYTES:] if frame.carry else b""
            log.debug("carrying %.1f s of the last turn into the next", len(self._carry) / SAMPLE_RATE / 2)
        elif isinstance(frame, (EndFrame, CancelFrame)):
            self._wipe()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def cleanup(self) -> None:
        await super().cleanup()  # type: ignore[no-untyped-call]
        for task in list(self._pending):
            task.cancel()
        await self._analyzer.cleanup()  # type: ignore[no-untyped-call]
        self._wipe()

    # ------------------------------------------------------------------ audio and turn boundaries

    async def _on_audio(self, frame: InputAudioRawFrame) -> None:
        if frame.sample_rate != SAMPLE_RATE or frame.num_channels != 1:
            raise ValueError("the voice pipeline runs at 16 kHz mono")
        if self._in_turn:
            self._turn += frame.audio
        else:
            self._pre_roll.append(frame.audio)
            self._pre_roll_bytes += len(frame.audio)
            while self._pre_roll_bytes > _PRE_ROLL_SECONDS * SAMPLE_RATE * 2 and self._pre_roll:
                self._pre_roll_bytes -= len(self._pre_roll.popleft())
        state = self._analyzer.append_audio(frame.audio, self._speaking)
        if state is EndOfTurnState.COMPLETE and self._in_turn and not self._speaking:
            # The caller paused longer than ``turn_max_pause_seconds`` after an "unfinished" turn.
            await self._finish_turn()

    async def _on_speech_started(self, frame: VADUserStartedSpeakingFrame) -> None:
        self._speaking = True
        self._analyzer.update_vad_start_secs(frame.start_secs)
        if not self._in_turn:
            self._in_turn = True
            self._turn = bytearray(b"".join(self._pre_roll))
            self._pre_roll.clear()
            self._pre_roll_bytes = 0
            await self.push_frame(ProposedUserStartedSpeakingFrame())

    async def _on_speech_stopped(self, frame: VADUserStoppedSpeakingFrame) -> None:
        self._speaking = False
        self._speech_ended = frame.timestamp - frame.stop_secs if frame.timestamp else time.time()
        if not self._in_turn:
            return
        state, _ = await self._analyzer.analyze_end_of_turn()
        if state is EndOfTurnState.COMPLETE and not self._speaking:
            await self._finish_turn()

    async def _finish_turn(self) -> None:
        log.debug("turn finished (%.1f s carried)", len(self._carry) / SAMPLE_RATE / 2)
        turn = self._carry + _JOIN_SILENCE + bytes(self._turn) if self._carry else bytes(self._turn)
        self._previous, self._carry = turn, b""
        audio = turn + _TRAILING_SILENCE
        self._turn = bytearray()
        self._in_turn = False
        self._analyzer.clear()  # type: ignore[no-untyped-call]
        decided = time.time()
        speech_ended = self._speech_ended or decided
        task = self.create_task(self._transcribe_and_push(audio, speech_ended, decided))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _transcribe_and_push(self, audio: bytes, speech_ended: float, decided: float) -> None:
        try:
            text = await asyncio.to_thread(
                transcribe,
                self._whisper,
                audio,
                beam_size=self._beam_size,
                vocabulary=self._vocabulary,
                window_seconds=self._window,
            )
        except Exception as error:  # a failed pass loses this turn, never the call
            log.warning("speech-to-text failed (%s); the caller is asked to repeat", type(error).__name__)
            text = ""
        finally:
            del audio
        done = time.time()
        log.info("heard (%.2f s): %s", done - decided, text, extra=CALLER_SPEECH)
        if self._on_turn is not None:
            self._on_turn(TurnHeard(speech_ended, decided, done, len(text.split())))
        await self.push_frame(CallerTurnFrame(text=text))
        await self.push_frame(ProposedUserStoppedSpeakingFrame())

    def _wipe(self) -> None:
        self._turn = bytearray()
        self._previous = self._carry = b""
        self._pre_roll.clear()
        self._pre_roll_bytes = 0
        self._analyzer.clear()  # type: ignore[no-untyped-call]
