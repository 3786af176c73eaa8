"""Rules first, a local LLM only where the rules are unsure, and the rules whenever the LLM fails.

Why: the rules answer in microseconds and are predictable; a local LLM costs seconds on the clinic's
CPU, so it is asked only below a confidence threshold, within a time budget, and never allowed to
talk the agent out of a safety decision.

Decisions:

* Guardrail intents found by the rules (EMERGENCY, CHANGE_RULES, OTHER_PERSON, MEDICAL_ADVICE) stand
  whatever their confidence: the LLM is not even asked. The LLM *may* raise one of them on its own
  (that only moves the policy towards escalation or refusal, the safe direction).
* Intent: the LLM's, unless it answered UNKNOWN (then the rules' answer is returned untouched).
* Slots: field by field, a value the rules found wins and the LLM fills only the gaps. The rules resolve
  relative dates by calendar arithmetic against ``now`` and names and numbers by explicit patterns;
  a small model is worse at exactly those, and better at what the rules did not catch at all.
* Confidence: the LLM's when it changed the intent, the higher of the two when they agree.
  ``source="hybrid"`` whenever the LLM's answer was used.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections import deque
from pathlib import Path
from typing import Final, Literal, Protocol, cast, get_args

from pydantic import SecretStr

from voice_agent.model_packages.dialogue_model import (
    DialogueModelName,
    ModelVerificationError,
    find_dialogue_model,
    llama_cpp_available,
)

from .base import Intent, Slots, Understanding, UnderstandingContext, Understood
from .guardrails import GUARDED_INTENTS
from .llm import (
    LlamaCppBackend,
    LLMUnderstanding,
    OpenAICompatibleBackend,
    UnderstandingUnavailable,
)

__all__ = [
    "GUARDRAIL_INTENTS",
    "HybridUnderstanding",
    "UnderstandingSettings",
    "build_understanding",
    "close_understanding",
    "merge",
    "warm_understanding",
]

log = logging.getLogger(__name__)

GUARDRAIL_INTENTS: Final = GUARDED_INTENTS
DEFAULT_THRESHOLD: Final = 0.6
DEFAULT_LLM_TIMEOUT_SECONDS: Final = 4.0
#: How many of the model's recent answer times predict the next one.
_RECENT: Final = 9
#: While the model is too slow for the budget, it is still asked once in this many unsure turns, to see
#: whether it has become fast enough (a lighter load, a warmer cache).
_PROBE_EVERY: Final = 10


def merge(rules: Understood, llm: Understood) -> Understood:
    """Combine a rules answer with an LLM answer as the module docstring describes."""
    if llm.intent is Intent.UNKNOWN:
        return rules
    mine = rules.slots.model_dump()
    theirs = llm.slots.model_dump()
    slots = Slots(**{name: mine[name] if mine[name] is not None else theirs[name] for name in mine})
    agree = llm.intent is rules.intent
    return Understood(
        intent=llm.intent,
        slots=slots,
        confidence=max(rules.confidence, llm.confidence) if agree else llm.confidence,
        source="hybrid",
    )


class HybridUnderstanding:
    """The Understanding protocol: rules, then (maybe) the LLM, merged; the rules stand on any LLM failure.

    ``consult_always`` asks the LLM on every turn that is not a rules guardrail (the "llm" mode).
    """

    def __init__(
        self,
        rules: Understanding,
        llm: Understanding | None,
        threshold: float = DEFAULT_THRESHOLD,
        *,
        llm_timeout_seconds: float = DEFAULT_LLM_TIMEOUT_SECONDS,
        consult_always: bool = False,
    ) -> None:
        self.rules = rules
        self.llm = llm
        self.threshold = threshold
        self.llm_timeout_seconds = llm_timeout_seconds
        self.consult_always = consult_always
        self._recent: deque[float] = deque(maxlen=_RECENT)
        self._skipped = 0

    def in_time(self) -> bool:
        """Whether the model can still answer within the budget, judged by its recent answers: a
        caller waits in silence while it thinks, so a model that cannot make it is not asked (the
        rules answer, or ask again, at once) except for an occasional probe."""
        if not self._recent or statistics.median(self._recent) <= self.llm_timeout_seconds:
            return True
        self._skipped += 1
        if self._skipped >= _PROBE_EVERY:
            self._skipped = 0
            return True
        return False

    async def understand(self, utterance: str, context: UnderstandingContext) -> Understood:
        ruled = await self.rules.understand(utterance, context)
        if self.llm is None or ruled.intent in GUARDRAIL_INTENTS:
            return ruled
        if ruled.confidence >= self.threshold and not self.consult_always:
            return ruled
        if not self.in_time():
            log.debug(
                "the model is slower than the %.1f s budget lately; the rules answer",
                self.llm_timeout_seconds,
            )
            return ruled
        started = time.perf_counter()
        try:
            answer = await asyncio.wait_for(self.llm.understand(utterance, context), self.llm_timeout_seconds)
        except TimeoutError:
            self._recent.append(time.perf_counter() - started)
            log.warning(
                "LLM understanding exceeded %.1f s; the rules' answer stands", self.llm_timeout_seconds
            )
            return ruled
        except UnderstandingUnavailable as error:
            log.warning("LLM understanding unavailable (%s); the rules' answer stands", error.reason)
            return ruled
        except Exception as error:  # any failure of an optional component must not end the call
            log.error("LLM understanding failed (%s); the rules' answer stands", type(error).__name__)
            return ruled
        self._recent.append(time.perf_counter() - started)
        log.info("hybrid understanding consulted the LLM in %.0f ms", self._recent[-1] * 1000)
        return merge(ruled, answer)

    async def warm(self, context: UnderstandingContext | None = None) -> None:
        """Load and warm the LLM; if it cannot start, say so once and run on the rules alone."""
        if not isinstance(self.llm, LLMUnderstanding):
            return
        try:
            await self.llm.warm(context)
        except UnderstandingUnavailable as error:
            log.error("the dialogue model could not start (%s); running on rules alone", error)
            llm, self.llm = self.llm, None
            await llm.aclose()

    async def aclose(self) -> None:
        if isinstance(self.llm, LLMUnderstanding):
            await self.llm.aclose()


async def warm_understanding(
    understanding: Understanding, context: UnderstandingContext | None = None
) -> None:
    """Start-up hook for whatever :func:`build_understanding` returned (a no-op for the rules)."""
    if isinstance(understanding, HybridUnderstanding):
        await understanding.warm(context)


async def close_understanding(understanding: Understanding) -> None:
    if isinstance(understanding, HybridUnderstanding):
        await understanding.aclose()


class UnderstandingSettings(Protocol):
    """The settings the factory reads (``voice_agent.settings.Settings`` is to grow these fields)."""

    @property
    def llm_model(self) -> str: ...
    @property
    def llm_model_path(self) -> Path | None: ...
    @property
    def models_dir(self) -> Path: ...
    @property
    def llm_base_url(self) -> str | None: ...
    @property
    def llm_endpoint_model(self) -> str: ...
    @property
    def llm_api_key(self) -> SecretStr | None: ...
    @property
    def llm_allow_plain_http(self) -> bool: ...
    @property
    def llm_threads(self) -> int: ...
    @property
    def llm_context_tokens(self) -> int: ...
    @property
    def llm_timeout_seconds(self) -> float: ...
    @property
    def llm_threshold(self) -> float: ...


def _build_llm(settings: UnderstandingSettings) -> LLMUnderstanding | None:
    """The configured LLM, or None with one log line saying why the agent runs on rules alone."""
    if settings.llm_base_url:
        backend = OpenAICompatibleBackend(
            settings.llm_base_url,
            model=settings.llm_endpoint_model,
            timeout_seconds=settings.llm_timeout_seconds,
            api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
            allow_plain_http=settings.llm_allow_plain_http,
        )
        log.info("understanding: LLM endpoint configured (%s)", backend.name)
        return LLMUnderstanding(backend)
    if not llama_cpp_available():
        log.warning(
            "understanding: llama-cpp-python is not installed (the 'llm' extra); running on rules alone"
        )
        return None
    path = settings.llm_model_path
    if path is not None:
        if not path.is_file():
            log.warning("understanding: llm_model_path %s does not exist; running on rules alone", path)
            return None
        log.info("understanding: clinic-supplied model %s (not hash-pinned)", path)
    else:
        if settings.llm_model not in get_args(DialogueModelName):
            log.error("understanding: unknown llm_model %r; running on rules alone", settings.llm_model)
            return None
        name = cast(DialogueModelName, settings.llm_model)
        try:
            path = find_dialogue_model(name, settings.models_dir)
        except ModelVerificationError as error:
            log.error("understanding: %s; running on rules alone", error)
            return None
        if path is None:
            log.warning(
                "understanding: dialogue model %s is not installed in %s (voice-agent models install %s); "
                "running on rules alone",
                name,
                settings.models_dir,
                name,
            )
            return None
    backend_local = LlamaCppBackend(path, n_threads=settings.llm_threads, n_ctx=settings.llm_context_tokens)
    return LLMUnderstanding(backend_local)


def build_understanding(
    mode: Literal["rules", "llm", "hybrid"],
    settings: UnderstandingSettings,
    rules: Understanding,
    *,
    timeout_seconds: float | None = None,
) -> Understanding:
    """The understanding the agent runs with. Call :func:`warm_understanding` on it at start-up.

    "rules": rules only. "hybrid": the LLM below ``llm_threshold``. "llm": the LLM on every turn, with
    the rules still deciding guardrails and standing in whenever the LLM fails. Without a usable model
    both degrade to the rules, with a log line that says so. ``timeout_seconds``: the model's budget
    per turn (voice calls give a shorter one than ``llm_timeout_seconds``).
    """
    if mode == "rules":
        log.info("understanding: rules only")
        return rules
    llm = _build_llm(settings)
    if llm is None:
        return rules
    log.info("understanding: %s mode (threshold %.2f)", mode, settings.llm_threshold)
    return HybridUnderstanding(
        rules,
        llm,
        settings.llm_threshold,
        llm_timeout_seconds=timeout_seconds or settings.llm_timeout_seconds,
        consult_always=mode == "llm",
    )
