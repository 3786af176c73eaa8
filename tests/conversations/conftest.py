"""The conversation tests' understanding (rules alone, and the hybrid) and a way to hold a conversation
with the suite's running agent (``agent``, tests/conftest.py) through the text channel's call loop
(``harness/conversations.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from harness.conversations import Converse, conversation_runner
from harness.real_parts import require
from harness.sandbox import Sandbox
from voice_agent.dialogue.understanding import Understanding
from voice_agent.dialogue.understanding.hybrid import (
    build_understanding,
    close_understanding,
    warm_understanding,
)
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.runtime import Runtime


@pytest.fixture(scope="session", params=["rules", "hybrid"])
async def understanding(request: pytest.FixtureRequest, agent: Runtime) -> AsyncIterator[Understanding]:
    """Every conversation runs with the rules alone and with the hybrid (the local model when the rules
    are unsure). The hybrid needs llama-cpp-python and the model: ``voice-agent models install --runtime``."""
    if request.param == "rules":
        yield RulesUnderstanding()
        return
    require("llama-cpp-python", agent.settings.llm_model)
    hybrid = build_understanding("hybrid", agent.settings, RulesUnderstanding())
    assert not isinstance(hybrid, RulesUnderstanding), "the model is installed, yet the hybrid fell back"
    await warm_understanding(hybrid)
    yield hybrid
    await close_understanding(hybrid)


@pytest.fixture(scope="session")
def converse(agent: Runtime, understanding: Understanding, sandbox: Sandbox) -> Converse:
    return conversation_runner(agent, understanding, sandbox)
