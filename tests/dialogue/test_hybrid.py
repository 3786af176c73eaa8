"""HybridUnderstanding and build_understanding with stub backends: who is asked, and whose answer stands."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr

from voice_agent.dialogue.understanding.base import (
    Expectation,
    Intent,
    Slots,
    UnderstandingContext,
    Understood,
)
from voice_agent.dialogue.understanding.hybrid import (
    GUARDRAIL_INTENTS,
    HybridUnderstanding,
    build_understanding,
    merge,
)
from voice_agent.dialogue.understanding.llm import LLMUnderstanding, UnderstandingUnavailable

CONTEXT = UnderstandingContext(
    now=datetime(2026, 11, 23, 9, 15, tzinfo=ZoneInfo("America/New_York")), expecting=Expectation.TASK
)


@dataclass
class StubRules:
    answer: Understood
    calls: int = 0

    async def understand(self, utterance: str, context: UnderstandingContext) -> Understood:
        self.calls += 1
        return self.answer


@dataclass
class StubLLM:
    answer: Understood | None = None
    error: Exception | None = None
    delay: float = 0.0
    calls: int = 0
    cancelled: list[bool] = field(default_factory=list)

    async def understand(self, utterance: str, context: UnderstandingContext) -> Understood:
        self.calls += 1
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.cancelled.append(True)
            raise
        if self.error is not None:
            raise self.error
        assert self.answer is not None
        return self.answer


def rules(intent: Intent, confidence: float, **slots: object) -> StubRules:
    return StubRules(Understood(intent=intent, slots=Slots.model_validate(slots), confidence=confidence))


def llm_says(intent: Intent, confidence: float = 0.75, **slots: object) -> Understood:
    return Understood(intent=intent, slots=Slots.model_validate(slots), confidence=confidence, source="llm")


async def test_confident_rules_do_not_consult_the_llm() -> None:
    llm = StubLLM(llm_says(Intent.CANCEL))
    hybrid = HybridUnderstanding(rules(Intent.BOOK, 0.9), llm, threshold=0.6)
    answer = await hybrid.understand("book me in", CONTEXT)
    assert answer.intent is Intent.BOOK and answer.source == "rules"
    assert llm.calls == 0


async def test_unsure_rules_consult_the_llm_and_its_intent_wins() -> None:
    llm = StubLLM(llm_says(Intent.RESCHEDULE, date_from=date(2026, 11, 24)))
    hybrid = HybridUnderstanding(rules(Intent.UNKNOWN, 0.2), llm, threshold=0.6)
    answer = await hybrid.understand("could we shift it to tuesday", CONTEXT)
    assert llm.calls == 1
    assert answer.intent is Intent.RESCHEDULE
    assert answer.slots.date_from == date(2026, 11, 24)
    assert answer.source == "hybrid"
    assert answer.confidence == 0.75


async def test_llm_failure_leaves_the_rules_answer() -> None:
    ruled = rules(Intent.BOOK, 0.4)
    for error in (UnderstandingUnavailable("invalid_output"), RuntimeError("boom")):
        hybrid = HybridUnderstanding(ruled, StubLLM(error=error))
        assert await hybrid.understand("x", CONTEXT) == ruled.answer


async def test_slow_llm_is_cancelled_and_the_rules_answer_stands(caplog: pytest.LogCaptureFixture) -> None:
    llm = StubLLM(llm_says(Intent.CANCEL), delay=5.0)
    ruled = rules(Intent.BOOK, 0.4)
    hybrid = HybridUnderstanding(ruled, llm, llm_timeout_seconds=0.05)
    with caplog.at_level(logging.INFO):
        started = asyncio.get_running_loop().time()
        answer = await hybrid.understand("x", CONTEXT)
        elapsed = asyncio.get_running_loop().time() - started
    assert answer == ruled.answer
    assert elapsed < 1.0
    assert llm.cancelled == [True]  # the in-process backend stops generating on cancellation
    assert "exceeded" in caplog.text


async def test_a_model_too_slow_for_the_budget_is_not_asked_again_but_probed() -> None:
    """A caller waits in silence while the model thinks: once it has been too slow, unsure turns are
    answered by the rules at once, with one probe in ten to see whether it got faster."""
    llm = StubLLM(llm_says(Intent.CANCEL), delay=5.0)
    ruled = rules(Intent.BOOK, 0.4)
    hybrid = HybridUnderstanding(ruled, llm, llm_timeout_seconds=0.05)
    for _ in range(11):
        assert await hybrid.understand("x", CONTEXT) == ruled.answer
    assert llm.calls == 2  # the first unsure turn, then a probe on the tenth turn after it
    llm.delay = 0.0
    await hybrid.understand("x", CONTEXT)  # skipped: the last probe was slow too
    assert llm.calls == 2


async def test_a_model_within_the_budget_is_asked_on_every_unsure_turn() -> None:
    llm = StubLLM(llm_says(Intent.CANCEL), delay=0.0)
    hybrid = HybridUnderstanding(rules(Intent.BOOK, 0.4), llm, llm_timeout_seconds=1.0)
    for _ in range(5):
        assert (await hybrid.understand("x", CONTEXT)).intent is Intent.CANCEL
    assert llm.calls == 5


@pytest.mark.parametrize("guardrail", sorted(GUARDRAIL_INTENTS))
async def test_guardrail_intents_from_rules_are_never_overridden(guardrail: Intent) -> None:
    llm = StubLLM(llm_says(Intent.BOOK, 0.99))
    hybrid = HybridUnderstanding(rules(guardrail, 0.1), llm, threshold=0.6, consult_always=True)
    answer = await hybrid.understand("x", CONTEXT)
    assert answer.intent is guardrail and answer.source == "rules"
    assert llm.calls == 0


async def test_the_llm_may_raise_a_guardrail_itself() -> None:
    llm = StubLLM(llm_says(Intent.EMERGENCY))
    answer = await HybridUnderstanding(rules(Intent.UNKNOWN, 0.1), llm).understand("x", CONTEXT)
    assert answer.intent is Intent.EMERGENCY


async def test_consult_always_asks_even_when_rules_are_sure() -> None:
    llm = StubLLM(llm_says(Intent.BOOK, 0.75))
    answer = await HybridUnderstanding(rules(Intent.BOOK, 0.9), llm, consult_always=True).understand(
        "x", CONTEXT
    )
    assert llm.calls == 1
    assert answer.source == "hybrid" and answer.confidence == 0.9  # agreement keeps the higher


def test_merge_rules_slots_win_and_llm_fills_gaps() -> None:
    ruled = Understood(
        intent=Intent.BOOK,
        slots=Slots(date_from=date(2026, 11, 24), date_to=date(2026, 11, 24)),
        confidence=0.5,
    )
    answer = llm_says(
        Intent.BOOK, date_from=date(2026, 12, 1), practitioner="sched-1", time_not_before="12:00"
    )
    merged = merge(ruled, answer)
    assert merged.slots.date_from == date(2026, 11, 24)  # arithmetic from the rules stands
    assert merged.slots.date_to == date(2026, 11, 24)
    assert merged.slots.practitioner == "sched-1"
    assert str(merged.slots.time_not_before) == "12:00:00"
    assert merged.source == "hybrid"


def test_merge_ignores_an_llm_that_did_not_understand() -> None:
    ruled = Understood(intent=Intent.BOOK, confidence=0.5)
    assert merge(ruled, llm_says(Intent.UNKNOWN, 0.2, option=1)) == ruled


@dataclass(frozen=True)
class FakeSettings:
    llm_model: str = "qwen2.5-coder-0.5b"
    llm_model_path: Path | None = None
    models_dir: Path = Path("/nonexistent")
    llm_base_url: str | None = None
    llm_endpoint_model: str = "local"
    llm_api_key: SecretStr | None = None
    llm_allow_plain_http: bool = False
    llm_threads: int = 2
    llm_context_tokens: int = 2048
    llm_timeout_seconds: float = 4.0
    llm_threshold: float = 0.6


def test_rules_mode_is_the_rules_object() -> None:
    ruled = rules(Intent.BOOK, 0.9)
    assert build_understanding("rules", FakeSettings(), ruled) is ruled


def test_missing_model_runs_on_rules_alone_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ruled = rules(Intent.BOOK, 0.9)
    with caplog.at_level(logging.INFO):
        built = build_understanding("hybrid", FakeSettings(models_dir=tmp_path), ruled)
    assert built is ruled
    assert "running on rules alone" in caplog.text


def test_missing_custom_model_path_runs_on_rules_alone(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ruled = rules(Intent.BOOK, 0.9)
    settings = FakeSettings(llm_model_path=tmp_path / "absent.gguf")
    with caplog.at_level(logging.INFO):
        assert build_understanding("llm", settings, ruled) is ruled
    assert "running on rules alone" in caplog.text


async def test_endpoint_mode_builds_a_hybrid_with_the_configured_threshold() -> None:
    ruled = rules(Intent.BOOK, 0.9)
    settings = FakeSettings(llm_base_url="http://127.0.0.1:9/v1", llm_threshold=0.7, llm_timeout_seconds=1.5)
    built = build_understanding("hybrid", settings, ruled)
    assert isinstance(built, HybridUnderstanding)
    assert built.threshold == 0.7 and built.llm_timeout_seconds == 1.5 and not built.consult_always
    assert isinstance(built.llm, LLMUnderstanding)
    await built.aclose()
    llm_mode = build_understanding("llm", settings, ruled)
    assert isinstance(llm_mode, HybridUnderstanding) and llm_mode.consult_always
    await llm_mode.aclose()


def test_plain_http_endpoint_elsewhere_is_refused() -> None:
    with pytest.raises(ValueError, match="unencrypted"):
        build_understanding(
            "hybrid", FakeSettings(llm_base_url="http://10.1.2.3:8000/v1"), rules(Intent.BOOK, 1)
        )
