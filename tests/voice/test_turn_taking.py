"""Answer-aware end of turn, on the real parts: Silero VAD, the smart-turn model and Whisper hear an
espeak-ng caller through 8 kHz μ-law, paced in real time, and the dialogue (here a judge that knows what a
whole answer is) decides whether a pause ends the turn.

The smart-turn model misjudges some voices: with espeak-ng on the telephone path it called 9 of 17
turns unfinished, and each then waited out ``turn_max_pause_seconds``. ``Unsure`` plays that caller: the
real model runs, but its verdict is always "not finished". The maximum pause is set long (4 s) so a turn
that waited for it cannot be mistaken for one that did not: the tests read what ended each turn from its
own record, never a clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pipecat.frames.frames import Frame, InputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.tests.utils import SleepFrame, run_test

from harness import caller_audio
from voice_agent.pipeline.call import voice_activity
from voice_agent.pipeline.speech_loader import SpeechModels
from voice_agent.pipeline.stt import (
    SAMPLE_RATE,
    AcceptDraftFrame,
    CallerTurnFrame,
    SharedSmartTurn,
    TurnDraftFrame,
    TurnHeard,
    TurnTranscriber,
)
from voice_agent.settings import Settings

MAX_PAUSE = 4.0
_FRAME = int(0.02 * SAMPLE_RATE) * 2  # 20 ms, as a carrier sends it


class Unsure(SharedSmartTurn):
    """The real smart-turn model, for a caller it always hears as unfinished."""

    def _predict_endpoint(self, audio_array: np.ndarray[Any, Any]) -> dict[str, Any]:
        verdict = super()._predict_endpoint(audio_array)
        return {**verdict, "prediction": 0}


class Judge(FrameProcessor):
    """The dialogue's side of a draft: accept it when ``whole`` says its words are a whole answer."""

    def __init__(self, whole: Callable[[str], bool]) -> None:
        super().__init__()
        self._whole = whole
        self.drafts: list[str] = []
        self.turns: list[str] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TurnDraftFrame):
            self.drafts.append(frame.text)
            if self._whole(frame.text):
                await self.push_frame(AcceptDraftFrame(draft=frame.draft), FrameDirection.UPSTREAM)
            return
        if isinstance(frame, CallerTurnFrame):
            self.turns.append(frame.text)
        await self.push_frame(frame, direction)


def on_the_phone(*pieces: str | float) -> bytes:
    """espeak-ng speech (strings) and pauses (seconds), through 8 kHz μ-law and back."""
    pcm = b"".join(
        caller_audio.silence(p) if isinstance(p, float) else caller_audio.espeak(p) for p in pieces
    )
    return caller_audio.from_ulaw_8k(caller_audio.to_ulaw_8k(pcm))


async def hear(
    audio: bytes, whole: Callable[[str], bool], *, analyzer: type[SharedSmartTurn] = Unsure
) -> tuple[list[TurnHeard], Judge]:
    models = SpeechModels(Settings()).load()  # process-wide in the product; cheap to load again here
    heard: list[TurnHeard] = []
    transcriber = TurnTranscriber(
        recogniser=models.recogniser(),
        smart_turn=models.smart_turn(),
        max_pause_seconds=MAX_PAUSE,
        on_turn=heard.append,
        analyzer=analyzer,
    )
    judge = Judge(whole)
    vad = voice_activity(Settings())  # the product's own VAD settings
    frames: list[Frame] = []
    for start in range(0, len(audio), _FRAME):
        frames.append(InputAudioRawFrame(audio[start : start + _FRAME], SAMPLE_RATE, 1))
        frames.append(SleepFrame(0.02))
    frames.append(SleepFrame(1.0))  # the last pass returns
    await run_test(Pipeline([vad, transcriber, judge]), frames_to_send=frames)
    return heard, judge


def has_year(words: str) -> bool:
    return "1980" in words or "eighty" in words.lower()


async def test_a_whole_answer_ends_the_turn_without_the_maximum_pause() -> None:
    heard, judge = await hear(on_the_phone(0.5, "March third, nineteen eighty.", MAX_PAUSE + 1.5), has_year)
    assert [t.ended_by for t in heard] == ["answer"], judge.drafts
    assert has_year(judge.turns[0]), judge.turns


async def test_half_an_answer_waits_and_the_caller_finishes_it() -> None:
    """A pause after "March third": the draft is not a whole date, so the turn goes on; the caller's year
    joins it, and the turn ends on the whole date, heard together."""
    audio = on_the_phone(0.5, "March third,", 0.8, "nineteen eighty.", MAX_PAUSE + 1.5)
    heard, judge = await hear(audio, has_year)
    assert len(judge.drafts) >= 2 and not has_year(judge.drafts[0]), judge.drafts
    assert [t.ended_by for t in heard] == ["answer"]
    first_part = "3rd" in judge.turns[0] or "third" in judge.turns[0].lower()  # "March" may be "Mark"
    assert first_part and has_year(judge.turns[0]), judge.turns


async def test_words_that_are_not_a_whole_answer_wait_for_the_maximum_pause() -> None:
    """The control: the same caller, words the dialogue does not take as whole, the old slow path."""
    heard, judge = await hear(
        on_the_phone(0.5, "March third, nineteen eighty.", MAX_PAUSE + 1.5), lambda _: False
    )
    assert [t.ended_by for t in heard] == ["max_pause"]
    assert judge.drafts and has_year(judge.turns[0])


async def test_a_turn_smart_turn_ends_is_heard_once() -> None:
    """With the model's real verdict, "Yes, that's right." ends by smart-turn or by its words, never by
    the maximum pause, and is one turn (the pass started at the pause is the turn's transcript)."""
    heard, judge = await hear(
        on_the_phone(0.5, "Yes that's right.", MAX_PAUSE + 1.5),
        lambda w: "yes" in w.lower(),
        analyzer=SharedSmartTurn,
    )
    assert [t.ended_by for t in heard] in (["smart_turn"], ["answer"]), judge.drafts
    assert "yes" in judge.turns[0].lower()
