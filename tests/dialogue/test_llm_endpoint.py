"""LLMUnderstanding over a real HTTP boundary: a tiny OpenAI-compatible server on 127.0.0.1 that we script.

It plays the servers we meet: one that rejects ``json_schema`` with 400 and takes ``json_object`` with a
schema (as ``llama_cpp.server`` does), one that takes ``json_schema`` (vLLM, Ollama), one that answers
garbage, one that fails, one that is slow.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from voice_agent.dialogue.understanding.base import (
    DirectoryEntry,
    Expectation,
    Intent,
    UnderstandingContext,
)
from voice_agent.dialogue.understanding.llm import (
    LLMUnderstanding,
    OpenAICompatibleBackend,
    UnderstandingUnavailable,
)

CONTEXT = UnderstandingContext(
    now=datetime(2026, 11, 23, 9, 15, tzinfo=ZoneInfo("America/New_York")),
    expecting=Expectation.TASK,
    practitioners=(DirectoryEntry("sched-patel", "Dr. Priya Patel"),),
)
UTTERANCE = "I want to see Dr. Patel on Tuesday, my name is Zebedee Quarrington"
GOOD = json.dumps({"intent": "book", "date_from": "2026-11-24", "practitioner": "Dr. Priya Patel"})

# (status, content) for one request; content None means a JSON body without choices
Reply = tuple[int, str | None]


@dataclass
class Script:
    """What the server answers; records every request body it received."""

    answer: Callable[[dict[str, Any], int], Reply]
    delay: float = 0.0
    requests: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)


def llama_cpp_like(content: str = GOOD) -> Callable[[dict[str, Any], int], Reply]:
    def answer(body: dict[str, Any], n: int) -> Reply:
        if body["response_format"]["type"] == "json_schema":
            return 400, None
        assert body["response_format"] == {"type": "json_object", "schema": body["response_format"]["schema"]}
        return 200, content

    return answer


def sequence(*replies: Reply) -> Callable[[dict[str, Any], int], Reply]:
    return lambda body, n: replies[min(n, len(replies) - 1)]


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    script = Script(answer=sequence((200, GOOD)))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            n = len(script.requests)
            script.requests.append(body)
            script.paths.append(self.path)
            time.sleep(script.delay)
            status, content = script.answer(body, n)
            if status != 200:
                payload = json.dumps({"error": {"message": "unsupported response_format"}}).encode()
            elif content is None:
                payload = json.dumps({"object": "chat.completion"}).encode()
            else:
                payload = json.dumps(
                    {"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}
                ).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (the time-out test)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", script
    finally:
        httpd.shutdown()
        httpd.server_close()


async def test_json_schema_rejected_falls_back_to_json_object_and_remembers(
    server: tuple[str, Script],
) -> None:
    url, script = server
    script.answer = llama_cpp_like()
    backend = OpenAICompatibleBackend(url)
    understanding = LLMUnderstanding(backend)
    try:
        first = await understanding.understand(UTTERANCE, CONTEXT)
        assert [r["response_format"]["type"] for r in script.requests] == ["json_schema", "json_object"]
        assert backend.response_format == "json_object"
        second = await understanding.understand(UTTERANCE, CONTEXT)
        assert [r["response_format"]["type"] for r in script.requests][2:] == ["json_object"]
    finally:
        await understanding.aclose()
    for answer in (first, second):
        assert answer.intent is Intent.BOOK and answer.source == "llm"
        assert answer.slots.practitioner == "sched-patel" and str(answer.slots.date_from) == "2026-11-24"
    assert script.paths == ["/v1/chat/completions"] * 3


async def test_json_schema_accepted_is_used_from_then_on(server: tuple[str, Script]) -> None:
    url, script = server
    backend = OpenAICompatibleBackend(url, model="qwen")
    understanding = LLMUnderstanding(backend)
    try:
        await understanding.understand(UTTERANCE, CONTEXT)
        await understanding.understand(UTTERANCE, CONTEXT)
    finally:
        await understanding.aclose()
    assert backend.response_format == "json_schema"
    formats = [r["response_format"] for r in script.requests]
    assert [f["type"] for f in formats] == ["json_schema", "json_schema"]
    assert len(formats[0]["json_schema"]["schema"]["anyOf"]) == 2
    assert script.requests[0]["model"] == "qwen" and script.requests[0]["temperature"] == 0.0


async def test_the_wire_carries_only_our_prompt_and_the_delimited_utterance(
    server: tuple[str, Script],
) -> None:
    url, script = server
    understanding = LLMUnderstanding(OpenAICompatibleBackend(url))
    try:
        await understanding.understand(UTTERANCE, CONTEXT)
    finally:
        await understanding.aclose()
    messages = script.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"]
    assert messages[1]["content"] == f"<caller>{UTTERANCE}</caller>"
    assert "Zebedee" not in messages[0]["content"]
    assert "tools" not in script.requests[0] and "functions" not in script.requests[0]


async def test_invalid_output_is_retried_once_then_succeeds(server: tuple[str, Script]) -> None:
    url, script = server
    script.answer = sequence((200, "{not json"), (200, GOOD))
    understanding = LLMUnderstanding(OpenAICompatibleBackend(url))
    try:
        answer = await understanding.understand(UTTERANCE, CONTEXT)
    finally:
        await understanding.aclose()
    assert answer.intent is Intent.BOOK
    assert [r["temperature"] for r in script.requests] == [0.0, 0.3]  # a greedy retry would repeat itself


@pytest.mark.parametrize(
    "bad",
    [
        (200, "Sure! Here is the JSON: {}"),
        (200, json.dumps({"intent": "book", "patient_id": "p-1"})),
        (200, json.dumps({"intent": "choose_option", "option": 2})),  # nothing was offered
        (200, None),  # no choices at all
    ],
)
async def test_invalid_twice_raises_unavailable_without_speech(
    server: tuple[str, Script], bad: Reply, caplog: pytest.LogCaptureFixture
) -> None:
    url, script = server
    script.answer = sequence(bad)
    understanding = LLMUnderstanding(OpenAICompatibleBackend(url))
    with caplog.at_level(logging.DEBUG), pytest.raises(UnderstandingUnavailable) as caught:
        await understanding.understand(UTTERANCE, CONTEXT)
    await understanding.aclose()
    assert caught.value.reason == "invalid_output"
    assert len(script.requests) == 2
    for text in (str(caught.value), caplog.text):
        assert (
            "Zebedee" not in text
            and "Quarrington" not in text
            and "Here is" not in text
            and "p-1" not in text
        )


@pytest.mark.parametrize("status", [400, 422, 500])
async def test_any_rejection_of_json_schema_falls_back_while_discovering(
    server: tuple[str, Script], status: int
) -> None:
    """llama_cpp.server reports the unsupported ``json_schema`` as a 500, others as 400 or 422."""
    url, script = server

    def answer(body: dict[str, Any], n: int) -> Reply:
        return (status, None) if body["response_format"]["type"] == "json_schema" else (200, GOOD)

    script.answer = answer
    backend = OpenAICompatibleBackend(url)
    understanding = LLMUnderstanding(backend)
    try:
        assert (await understanding.understand(UTTERANCE, CONTEXT)).intent is Intent.BOOK
    finally:
        await understanding.aclose()
    assert backend.response_format == "json_object"


async def test_server_error_after_discovery_is_not_retried(server: tuple[str, Script]) -> None:
    url, script = server
    script.answer = sequence((200, GOOD), (500, None))
    understanding = LLMUnderstanding(OpenAICompatibleBackend(url))
    await understanding.understand(UTTERANCE, CONTEXT)
    with pytest.raises(UnderstandingUnavailable) as caught:
        await understanding.understand(UTTERANCE, CONTEXT)
    await understanding.aclose()
    assert caught.value.reason == "backend_error" and caught.value.detail == "HTTP 500"
    assert len(script.requests) == 2


async def test_json_object_also_rejected_is_a_backend_error(server: tuple[str, Script]) -> None:
    url, script = server
    script.answer = sequence((400, None))
    understanding = LLMUnderstanding(OpenAICompatibleBackend(url))
    with pytest.raises(UnderstandingUnavailable) as caught:
        await understanding.understand(UTTERANCE, CONTEXT)
    await understanding.aclose()
    assert caught.value.detail == "HTTP 400"
    assert [r["response_format"]["type"] for r in script.requests] == ["json_schema", "json_object"]


async def test_slow_endpoint_times_out(server: tuple[str, Script]) -> None:
    url, script = server
    script.delay = 1.0
    understanding = LLMUnderstanding(OpenAICompatibleBackend(url, timeout_seconds=0.2))
    with pytest.raises(UnderstandingUnavailable) as caught:
        await understanding.understand(UTTERANCE, CONTEXT)
    await understanding.aclose()
    assert caught.value.reason == "timeout"


async def test_proxy_environment_is_ignored(
    server: tuple[str, Script], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Caller speech goes to the configured endpoint only, never through a proxy from the environment."""
    url, _ = server
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    understanding = LLMUnderstanding(OpenAICompatibleBackend(url))
    try:
        assert (await understanding.understand(UTTERANCE, CONTEXT)).intent is Intent.BOOK
    finally:
        await understanding.aclose()


async def test_warm_sends_one_throwaway_request(server: tuple[str, Script]) -> None:
    url, script = server
    script.answer = sequence((200, '{"intent": "bo'))  # truncated by max_tokens: expected, ignored
    understanding = LLMUnderstanding(OpenAICompatibleBackend(url))
    try:
        seconds = await understanding.warm(CONTEXT)
    finally:
        await understanding.aclose()
    assert seconds >= 0 and len(script.requests) == 1
    assert script.requests[0]["max_tokens"] == 4


@pytest.mark.parametrize(
    "url", ["http://10.0.0.5:8000/v1", "http://llm.clinic.internal/v1", "ftp://x/v1", "/v1"]
)
def test_plain_http_off_the_machine_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        OpenAICompatibleBackend(url)


async def test_plain_http_can_be_allowed_explicitly_with_a_warning() -> None:
    with pytest.warns(UserWarning, match="unencrypted"):
        backend = OpenAICompatibleBackend("http://10.0.0.5:8000/v1", allow_plain_http=True)
    await backend.aclose()
