"""One real ``voice-agent serve`` for the voice tests (``harness/voice_server.py``), shared by the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.sandbox import Sandbox
from harness.voice_server import VoiceServer, start_voice_server, stop_voice_server


@pytest.fixture(scope="session")
def voice_server(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    server = start_voice_server(sandbox, tmp_path_factory.mktemp("voice") / "product")
    try:
        yield server
    finally:
        stop_voice_server(server)
