"""Speech-to-text for a call: one Whisper pass per caller pause, reused for the turn it ends.

Why not pipecat's ``SegmentedSTTService``/``WhisperSTTService``: they transcribe at every VAD stop, so
with the short VAD stop that smart-turn needs, a date of birth said as "March third ... nineteen
eighty" costs two Whisper passes (each ~0.45 s on 2 cores: faster-whisper pads every pass to 30 s) and
arrives in pieces. Here the smart-turn model judges each pause first; only a finished turn is
transcribed, in one pass over all of its audio. They also load a model per call and expose neither beam
size nor CPU threads. Everything else is pipecat's: the VAD frames come from its ``VADProcessor``, the
turn model is its smart-turn v3, and the turn frames this pushes are the ``Proposed...`` ones its
``UserTurnProcessor`` resolves (and turns into interruptions: barge-in).

Answer-aware end of turn: at every VAD stop the turn so far is transcribed while smart-turn judges the
pause (the two run side by side, so a turn smart-turn ends costs no extra pass: the same transcript is
used). If smart-turn thinks the caller is not done, the transcript goes downstream as a
``TurnDraftFrame``; the dialogue, which alone knows what a whole answer to its question is, may send back
``AcceptDraftFrame`` and the turn ends at once, instead of after ``turn_max_pause_seconds``. If the
caller speaks again first, the draft is dropped and the turn goes on gathering.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

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

from voice_agent.pipeline.metrics import EndedBy
from voice_agent.pipeline.recognisers import Recogniser, WhisperRecogniser
from voice_agent.privacy import CALLER_SPEECH

if TYPE_CHECKING:
    import onnxruntime
    from faster_whisper import WhisperModel

log = logging.getLogger(__name__)

T = TypeVar("T")

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
#: What Whisper writes for speech it cannot place, learned from its YouTube training data: on a clinic's
#: line nobody says these, so the turn is taken as nothing heard (a caller asked for their name whose
#: answer came back as "Thank you for watching" was otherwise heard saying goodbye, and hung up on).
_HALLUCINATION = re.compile(
    r"\b(?:thanks? (?:you )?for watching|see you (?:in the )?next (?:video|time)|(?:like and )?subscribe"
    r"|subtitles? by|captions? by|amara\.org)\b",
    re.IGNORECASE,
)


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
class TurnDraftFrame(DataFrame):
    """What the caller has said so far in a turn smart-turn thinks is unfinished, for the dialogue to
    judge whether it is already a whole answer. Like ``CallerTurnFrame``, its ``str`` holds no words."""

    text: str = ""
    draft: int = 0  # which pause of the call this was heard at; only the latest can be accepted

    def __str__(self) -> str:
        return f"{self.name}(draft {self.draft}, words: {len(self.text.split())})"


@dataclass
class AcceptDraftFrame(SystemFrame):
    """Upstream, from the dialogue: the draft is a whole answer; end the turn on it now (unless the
    caller has spoken again since, which makes it stale)."""

    draft: int = 0


@dataclass
class TurnOpenedFrame(SystemFrame):
    """Downstream: the caller began a turn; exactly one ``CallerTurnFrame`` will close it. Lets the
    dialogue tell "quiet" from "still talking" while it holds half an answer (pipecat's own user-turn
    frames can merge two turns that overlap)."""


@dataclass
class ListenForLettersFrame(SystemFrame):
    """Upstream, from the dialogue: the caller was just asked to spell (``True``) or has moved on.
    Whisper is then primed for letters, which it otherwise hears as words ("O, K" as "okay")."""

    letters: bool = True


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


#: Whisper's prompt while a caller spells: the alphabet written as letters. Without it tiny.en writes
#: a spelling as words ("O, K, O" as "Okay, oh"); with it, letter errors over 8 kHz fell from 145 to 85
#: on 30 spelled surnames in six voices (bench/stt_wer.py's voices; the prompts tried are in the note).
SPELLING = Vocabulary(
    initial_prompt="The letters are: A, B, C, D, E, F, G, H, I, J, K, L, M, N, O, P, Q, R, S, T, U, V, W, X, "
    "Y, Z."
)


def whisper_hallucination(text: str) -> bool:
    """Whether Whisper wrote one of its stock phrases for sound it could not place."""
    return _HALLUCINATION.search(text) is not None


def transcribe(
    model: WhisperModel,
    pcm16: bytes,
    *,
    beam_size: int,
    vocabulary: Vocabulary = Vocabulary(),
    window_seconds: int = 30,
) -> str:
    """One blocking Whisper pass over 16 kHz mono int16 audio (run it off the event loop), as calls hear
    it: the tests and benchmarks that hear with the product's own Whisper use this."""
    text = WhisperRecogniser(model, beam_size=beam_size, window_seconds=window_seconds).transcribe(
        pcm16, vocabulary=vocabulary
    )
    return "" if whisper_hallucination(text) else text


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
    transcribed: float  # time.time() when Whisper returned (may precede the decision: speculation)
    words: int
    ended_by: EndedBy = "smart_turn"


@dataclass
class _Pass:
    """One speculative transcription of the turn so far, started at a VAD stop."""

    draft: int
    task: asyncio.Task[tuple[str, float]]


class TurnTranscriber(FrameProcessor):
    """VAD frames + audio in; per finished turn, one ``CallerTurnFrame`` and a proposed turn stop."""

    def __init__(
        self,
        *,
        recogniser: Recogniser,
        smart_turn: onnxruntime.InferenceSession,
        max_pause_seconds: float,
        vocabulary: Callable[[], Awaitable[Vocabulary]] | None = None,
        on_turn: Callable[[TurnHeard], None] | None = None,
        analyzer: type[SharedSmartTurn] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._recogniser = recogniser
        self._analyzer = (analyzer or SharedSmartTurn)(smart_turn, max_pause_seconds=max_pause_seconds)
        self._vocabulary_source = vocabulary
        self._vocabulary = Vocabulary()
        self._letters = False
        self._on_turn = on_turn
        self._pre_roll: deque[bytes] = deque()
        self._pre_roll_bytes = 0
        self._turn = bytearray()
        self._previous = b""  # the last finished turn's audio, until the dialogue says it is whole
        self._carry = b""  # a first part the dialogue asked to hear again with the rest
        self._in_turn = False
        self._speaking = False
        self._speech_ended = 0.0
        self._pending: set[asyncio.Task[Any]] = set()
        self._draft = 0  # bumped whenever the caller speaks on or a turn ends: older passes are stale
        self._pass: _Pass | None = None

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
        elif isinstance(frame, ListenForLettersFrame):
            self._letters = frame.letters
        elif isinstance(frame, AcceptDraftFrame):
            if frame.draft == self._draft and self._in_turn and not self._speaking:
                await self._finish_turn("answer")
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
            await self._finish_turn("max_pause")

    async def _on_speech_started(self, frame: VADUserStartedSpeakingFrame) -> None:
        self._speaking = True
        self._analyzer.update_vad_start_secs(frame.start_secs)
        self._draft += 1  # the caller goes on: what was heard at the last pause is not the turn
        self._pass = None
        if not self._in_turn:
            self._in_turn = True
            self._turn = bytearray(b"".join(self._pre_roll))
            self._pre_roll.clear()
            self._pre_roll_bytes = 0
            await self.push_frame(TurnOpenedFrame())
            await self.push_frame(ProposedUserStartedSpeakingFrame())

    async def _on_speech_stopped(self, frame: VADUserStoppedSpeakingFrame) -> None:
        self._speaking = False
        self._speech_ended = frame.timestamp - frame.stop_secs if frame.timestamp else time.time()
        if not self._in_turn:
            return
        # Hear the turn so far while smart-turn judges the pause: whichever way the turn ends from
        # here (smart-turn, a whole answer, the maximum pause), this pass is its transcript. The
        # judgement runs beside the frames, not in their way: a caller who speaks again while the model
        # thinks (a comma's pause) must be seen to, or the verdict would cut their sentence in two.
        self._pass = _Pass(self._draft, self._spawn(self._hear(self._turn_audio())))
        self._spawn(self._judge_pause(self._pass))

    async def _judge_pause(self, heard: _Pass) -> None:
        state, _ = await self._analyzer.analyze_end_of_turn()
        if heard.draft != self._draft or self._speaking or not self._in_turn:
            return  # the caller spoke again while the model judged: the turn goes on
        if state is EndOfTurnState.COMPLETE:
            await self._finish_turn("smart_turn")
        else:
            await self._offer_draft(heard)

    def _turn_audio(self) -> bytes:
        return self._carry + _JOIN_SILENCE + bytes(self._turn) if self._carry else bytes(self._turn)

    async def _offer_draft(self, heard: _Pass) -> None:
        """smart-turn says the caller is not done: let the dialogue judge the words themselves."""
        text, _ = await heard.task
        if heard.draft == self._draft and self._in_turn and not self._speaking and text:
            await self.push_frame(TurnDraftFrame(text=text, draft=heard.draft))

    async def _finish_turn(self, ended_by: EndedBy) -> None:
        log.debug("turn ended by %s (%.1f s carried)", ended_by, len(self._carry) / SAMPLE_RATE / 2)
        turn = self._turn_audio()
        heard = self._pass if self._pass is not None and self._pass.draft == self._draft else None
        self._previous, self._carry = turn, b""
        self._turn = bytearray()
        self._in_turn = False
        self._draft += 1
        self._pass = None
        self._analyzer.clear()  # type: ignore[no-untyped-call]
        decided = time.time()
        speech_ended = self._speech_ended or decided
        # The pass started at the pause heard everything (nothing but silence came since); without one
        # (no VAD stop in this turn) the turn is heard now.
        task = heard.task if heard is not None else self._spawn(self._hear(turn))
        self._spawn(self._push_turn(task, speech_ended, decided, ended_by))

    async def _hear(self, turn: bytes) -> tuple[str, float]:
        """One Whisper pass over a turn's audio; (text, when it returned). Never raises."""
        try:
            text = await asyncio.to_thread(
                self._recogniser.transcribe,
                turn + _TRAILING_SILENCE,
                vocabulary=SPELLING if self._letters else self._vocabulary,
            )
            text = "" if whisper_hallucination(text) else text
        except Exception as error:  # a failed pass loses this turn, never the call
            log.warning("speech-to-text failed (%s); the caller is asked to repeat", type(error).__name__)
            text = ""
        finally:
            del turn
        return text, time.time()

    async def _push_turn(
        self, heard: asyncio.Task[tuple[str, float]], speech_ended: float, decided: float, ended_by: EndedBy
    ) -> None:
        text, done = await heard
        log.info("heard (%.2f s): %s", max(0.0, done - decided), text, extra=CALLER_SPEECH)
        if self._on_turn is not None:
            self._on_turn(TurnHeard(speech_ended, decided, done, len(text.split()), ended_by))
        await self.push_frame(CallerTurnFrame(text=text))
        await self.push_frame(ProposedUserStoppedSpeakingFrame())

    def _spawn(self, work: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = self.create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        return task

    def _wipe(self) -> None:
        self._pass = None
        self._turn = bytearray()
        self._previous = self._carry = b""
        self._pre_roll.clear()
        self._pre_roll_bytes = 0
        self._analyzer.clear()  # type: ignore[no-untyped-call]
