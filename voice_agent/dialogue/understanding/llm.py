"""Understanding by a language model that runs on the clinic's own hardware.

Two backends sit behind one small interface (:class:`ChatBackend`): llama.cpp in-process
(:class:`LlamaCppBackend`, the default: nothing leaves the machine) and any OpenAI-compatible endpoint
the clinic runs itself (:class:`OpenAICompatibleBackend`: vLLM, Ollama, ``llama_cpp.server``).
:class:`LLMUnderstanding` builds the prompt, asks the backend for schema-constrained JSON, validates
it, retries once on invalid output and otherwise raises :class:`UnderstandingUnavailable`, so the
hybrid can fall back to the rules.

Privacy: the utterance and the model's output carry caller speech, so neither is ever logged nor put
in an exception message; only timings and failure classes are.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import logging
import threading
import time
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol
from urllib.parse import urlsplit

import httpx

from .base import Expectation, UnderstandingContext, Understood
from .llm_prompt import ChatMessage, InvalidOutput, build_messages, output_schema, parse_output

__all__ = [
    "BackendError",
    "ChatBackend",
    "LLMUnderstanding",
    "LlamaCppBackend",
    "OpenAICompatibleBackend",
    "UnderstandingUnavailable",
]

log = logging.getLogger(__name__)

#: Enough for the longest answer the schema allows (names, dates, times, a phone number).
DEFAULT_MAX_TOKENS: Final = 160
#: The second try samples a little, since a greedy retry of the same prompt repeats the same answer.
RETRY_TEMPERATURE: Final = 0.3
#: A model's own confidence is not calibrated; this is what the hybrid is told an LLM answer is worth.
DEFAULT_LLM_CONFIDENCE: Final = 0.75

FailureClass = Literal["invalid_output", "backend_error", "timeout", "not_available"]


class UnderstandingUnavailable(RuntimeError):
    """The LLM gave no usable answer; the caller should fall back to the rules.

    ``reason`` is a failure class, ``detail`` an exception class name or HTTP status: never speech.
    """

    def __init__(self, reason: FailureClass, detail: str = "") -> None:
        super().__init__(f"LLM understanding unavailable: {reason}{f' ({detail})' if detail else ''}")
        self.reason: FailureClass = reason
        self.detail = detail


class BackendError(RuntimeError):
    """A backend could not produce a completion (transport, HTTP status, model not loadable)."""

    def __init__(self, reason: FailureClass, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: FailureClass = reason
        self.detail = detail


class ChatBackend(Protocol):
    """One chat completion constrained to a JSON schema; returns the raw text of the answer."""

    name: str

    async def complete(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], *, temperature: float, max_tokens: int
    ) -> str: ...

    async def aclose(self) -> None: ...


# --------------------------------------------------------------------------------------------------
# llama.cpp in-process
# --------------------------------------------------------------------------------------------------


class _Cancelled(Exception):
    pass


class LlamaCppBackend:
    """llama.cpp in this process: one request at a time, off the event loop, cancellable between tokens.

    A cancelled request (the hybrid's timeout) stops at the next token instead of burning the CPU the
    next turn needs; the prompt prefix already evaluated stays in llama.cpp's cache for the next call.
    """

    name = "llama.cpp"

    def __init__(
        self,
        model_path: Path,
        *,
        n_threads: int = 2,
        n_ctx: int = 2048,
        seed: int = 0,
    ) -> None:
        self.model_path = model_path
        self._n_threads = n_threads
        self._n_ctx = n_ctx
        self._seed = seed
        self._llama: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = threading.Lock()  # llama.cpp contexts are not thread-safe
        self._queue: asyncio.Lock | None = None  # waiters queue here, not in executor threads
        self.load_seconds: float | None = None

    def load(self) -> None:
        """Load the model (blocking; seconds). Idempotent."""
        with self._load_lock:
            if self._llama is not None:
                return
            try:
                # imported here, untyped: an optional extra that loads a native library on import
                llama_cpp: Any = importlib.import_module("llama_cpp")
            except ImportError as error:
                raise BackendError("not_available", "llama-cpp-python is not installed") from error
            started = time.perf_counter()
            try:
                self._llama = llama_cpp.Llama(
                    model_path=str(self.model_path),
                    n_ctx=self._n_ctx,
                    n_threads=self._n_threads,
                    n_threads_batch=self._n_threads,
                    seed=self._seed,
                    verbose=False,
                )
            except (ValueError, RuntimeError, OSError) as error:
                raise BackendError("not_available", type(error).__name__) from None
            self.load_seconds = time.perf_counter() - started
            log.info("dialogue model loaded in %.2f s (%d threads)", self.load_seconds, self._n_threads)

    async def start(self) -> None:
        await asyncio.to_thread(self.load)

    async def complete(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], *, temperature: float, max_tokens: int
    ) -> str:
        if self._queue is None:
            self._queue = asyncio.Lock()
        cancel = threading.Event()
        async with self._queue:
            try:
                return await asyncio.to_thread(
                    self._complete, messages, schema, temperature, max_tokens, cancel
                )
            except asyncio.CancelledError:
                cancel.set()
                raise

    def _complete(
        self,
        messages: Sequence[ChatMessage],
        schema: dict[str, Any],
        temperature: float,
        max_tokens: int,
        cancel: threading.Event,
    ) -> str:
        with self._run_lock:
            self.load()
            if cancel.is_set():
                raise _Cancelled
            try:
                stream = self._llama.create_chat_completion(
                    messages=list(messages),
                    response_format={"type": "json_object", "schema": schema},
                    temperature=temperature,
                    max_tokens=max_tokens,
                    stream=True,
                )
                pieces: list[str] = []
                for chunk in stream:
                    if cancel.is_set():
                        raise _Cancelled
                    content = chunk["choices"][0]["delta"].get("content")
                    if content:
                        pieces.append(content)
            except (ValueError, RuntimeError, KeyError, IndexError) as error:
                # e.g. the prompt does not fit n_ctx; the message may quote nothing, but stay safe
                raise BackendError("backend_error", type(error).__name__) from None
            return "".join(pieces)

    async def aclose(self) -> None:
        """Free the model once any running completion has stopped (closing under it would crash)."""
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._run_lock, self._load_lock:
            llama, self._llama = self._llama, None
            if llama is not None:
                llama.close()


# --------------------------------------------------------------------------------------------------
# OpenAI-compatible endpoint (the clinic's own server)
# --------------------------------------------------------------------------------------------------

ResponseFormat = Literal["json_schema", "json_object"]


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class OpenAICompatibleBackend:
    """``POST {base_url}/chat/completions`` on an endpoint the clinic controls.

    Structured output differs between servers: vLLM and Ollama take ``json_schema``; ``llama_cpp.server``
    rejects it (with a 500, its way of reporting a validation error) and takes ``json_object`` with a
    ``schema``. Until one has worked, ``json_schema`` is tried first and any error switches to the second;
    whichever worked is remembered for the life of the backend (a later error is then just an error).
    The client ignores proxy environment variables (``trust_env=False``) and redirects: caller speech
    goes to this URL only.
    Plain ``http://`` is accepted for loopback only, unless ``allow_plain_http`` (then it warns).
    """

    name = "openai-compatible"

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "local",
        timeout_seconds: float = 10.0,
        api_key: str | None = None,
        verify: bool | str = True,
        allow_plain_http: bool = False,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("the LLM base URL must be an absolute http(s):// URL")
        if parts.scheme == "http" and not _is_loopback(parts.hostname):
            if not allow_plain_http:
                raise ValueError(
                    "the LLM base URL is plain http:// to another host: caller speech would cross the "
                    "network unencrypted. Use https:// (or allow plain http explicitly on a trusted segment)."
                )
            warnings.warn("caller speech goes to the LLM endpoint unencrypted (plain http)", stacklevel=2)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._model = model
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/") + "/",
            timeout=httpx.Timeout(timeout_seconds),
            trust_env=False,
            follow_redirects=False,
            verify=verify,
            headers=headers,
            transport=transport,
        )
        self.response_format: ResponseFormat | None = None

    def _body(
        self,
        fmt: ResponseFormat,
        messages: Sequence[ChatMessage],
        schema: dict[str, Any],
        temperature: float,
        max_tokens: int,
    ) -> dict[str, Any]:
        response_format: dict[str, Any] = (
            {"type": "json_schema", "json_schema": {"name": "understood", "schema": schema}}
            if fmt == "json_schema"
            else {"type": "json_object", "schema": schema}
        )
        return {
            "model": self._model,
            "messages": list(messages),
            "temperature": temperature,
            "max_tokens": max_tokens,
            "stream": False,
            "response_format": response_format,
        }

    async def complete(
        self, messages: Sequence[ChatMessage], schema: dict[str, Any], *, temperature: float, max_tokens: int
    ) -> str:
        formats: tuple[ResponseFormat, ...] = (
            (self.response_format,) if self.response_format else ("json_schema", "json_object")
        )
        for fmt in formats:
            try:
                response = await self._client.post(
                    "chat/completions", json=self._body(fmt, messages, schema, temperature, max_tokens)
                )
            except httpx.TimeoutException as error:
                raise BackendError("timeout", type(error).__name__) from None
            except httpx.HTTPError as error:
                raise BackendError("backend_error", type(error).__name__) from None
            if response.status_code != 200 and fmt == "json_schema" and self.response_format is None:
                # 400/422 from most servers; llama_cpp.server turns its validation error into a 500
                log.info(
                    "LLM endpoint rejected json_schema (HTTP %d); trying json_object", response.status_code
                )
                continue
            if response.status_code != 200:
                raise BackendError("backend_error", f"HTTP {response.status_code}")
            if self.response_format is None:
                self.response_format = fmt
                log.info("LLM endpoint takes response_format %s", fmt)
            return _content(response)
        raise BackendError("backend_error", "no response format accepted")

    async def aclose(self) -> None:
        await self._client.aclose()


def _content(response: httpx.Response) -> str:
    try:
        content = response.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise InvalidOutput("endpoint: malformed completion") from None
    if not isinstance(content, str):
        raise InvalidOutput("endpoint: no text content")
    return content


# --------------------------------------------------------------------------------------------------
# the Understanding
# --------------------------------------------------------------------------------------------------


class LLMUnderstanding:
    """The Understanding protocol on top of a :class:`ChatBackend`.

    Invalid output (bad JSON, schema failure, out of range) is retried once, slightly sampled; a
    transport failure is not retried (it would double the caller's wait for the same failure).
    """

    def __init__(
        self,
        backend: ChatBackend,
        *,
        confidence: float = DEFAULT_LLM_CONFIDENCE,
        max_tokens: int = DEFAULT_MAX_TOKENS,
    ) -> None:
        self.backend = backend
        self._confidence = confidence
        self._max_tokens = max_tokens

    async def understand(self, utterance: str, context: UnderstandingContext) -> Understood:
        messages = build_messages(utterance, context)
        schema = output_schema(context)
        started = time.perf_counter()
        for attempt, temperature in enumerate((0.0, RETRY_TEMPERATURE), start=1):
            try:
                raw = await self.backend.complete(
                    messages, schema, temperature=temperature, max_tokens=self._max_tokens
                )
                understood = parse_output(raw, context, confidence=self._confidence, utterance=utterance)
            except InvalidOutput as error:
                log.warning("LLM output invalid on attempt %d (%s)", attempt, error)
                continue
            except BackendError as error:
                log.warning("LLM backend %s failed: %s (%s)", self.backend.name, error.reason, error.detail)
                raise UnderstandingUnavailable(error.reason, error.detail) from None
            log.info(
                "LLM understanding took %.0f ms (%s, attempt %d)",
                (time.perf_counter() - started) * 1000,
                self.backend.name,
                attempt,
            )
            return understood
        log.warning("LLM output invalid twice in %.0f ms; giving up", (time.perf_counter() - started) * 1000)
        raise UnderstandingUnavailable("invalid_output")

    async def warm(self, context: UnderstandingContext | None = None) -> float:
        """Evaluate the system prompt once (a throwaway completion) so the first caller does not wait.

        Pass a context with the clinic's directory to cache the longest prefix. Returns seconds spent;
        raises :class:`UnderstandingUnavailable` when the backend cannot answer at all.
        """
        context = context or UnderstandingContext(now=datetime.now(UTC), expecting=Expectation.TASK)
        started = time.perf_counter()
        if isinstance(self.backend, LlamaCppBackend):
            try:
                await self.backend.start()
            except BackendError as error:
                raise UnderstandingUnavailable(error.reason, error.detail) from None
        try:
            await self.backend.complete(
                build_messages("hello", context), output_schema(context), temperature=0.0, max_tokens=4
            )
        except BackendError as error:
            raise UnderstandingUnavailable(error.reason, error.detail) from None
        except InvalidOutput:
            pass  # a truncated throwaway answer is expected
        seconds = time.perf_counter() - started
        log.info("LLM understanding warmed up in %.2f s (%s)", seconds, self.backend.name)
        return seconds

    async def aclose(self) -> None:
        await self.backend.aclose()
