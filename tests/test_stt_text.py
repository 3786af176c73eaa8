"""Whisper's stock phrases for sound it cannot place are dropped as nothing heard; what callers say is
kept, even when it shares words with them (a practitioner named Amara, a caller's "thank you")."""

from __future__ import annotations

import pytest

from voice_agent.pipeline.stt import whisper_hallucination


@pytest.mark.parametrize(
    "text",
    [
        "Thank you for watching, and see you in the next video.",
        "Thanks for watching!",
        "Please like and subscribe.",
        "Subtitles by the Amara.org community",
    ],
)
def test_whispers_stock_phrases_are_nothing_heard(text: str) -> None:
    assert whisper_hallucination(text)


@pytest.mark.parametrize(
    "text",
    ["Thank you, goodbye.", "With Dr. Amara Okafor please", "I'm watching my diet", "See you next Tuesday"],
)
def test_what_callers_say_is_kept(text: str) -> None:
    assert not whisper_hallucination(text)
