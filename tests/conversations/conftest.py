"""A running agent (real sandbox over mTLS, real encrypted audit trail) and a way to hold a conversation
with it through the text channel's call loop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import Sandbox
from tests.conversations.simulator import CallerSimulator, Persona
from tests.real_parts import require
from voice_agent.channels.text import run_call
from voice_agent.dialogue.factory import conversations
from voice_agent.dialogue.understanding import Understanding
from voice_agent.dialogue.understanding.hybrid import (
    build_understanding,
    close_understanding,
    warm_understanding,
)
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.runtime import Runtime, runtime
from voice_agent.session import EndReason


@dataclass
class Transcript:
    turns: list[tuple[str, str]] = field(default_factory=list)
    end: EndReason | None = None
    asked: list[str] = field(default_factory=list)
    patient_id: str | None = None

    @property
    def agent(self) -> list[str]:
        return [text for who, text in self.turns if who == "agent"]

    def text(self) -> str:
        return "\n".join(f"{who}: {text}" for who, text in self.turns)


@pytest.fixture(scope="session")
async def agent(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    # The suite's callers fail verification on purpose, many times over for a few patients; the limits
    # across calls are tested on an agent of their own (tests/security), at their defaults.
    settings = sandbox.agent_settings(
        tmp_path_factory.mktemp("agent"),
        clinic_name="Maple Street Clinic",
        verification_identity_limit=100,
        verification_number_limit=100,
    )
    async with runtime(settings) as running:
        yield running


Converse = Callable[..., Any]


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


def check_invariants(
    sandbox: Sandbox, persona: Persona, transcript: Transcript, before: dict[str, Any]
) -> None:
    """What every conversation must satisfy, whatever it was about: FHIR changed only as the agent told
    the caller it did, and no reply named any patient but the caller."""
    after = booked(sandbox, transcript.patient_id) if transcript.patient_id else {}
    spoken = transcript.agent
    made = sum(line.startswith(("You're booked", "Done.")) for line in spoken)
    removed = sum(line.startswith(("It's cancelled", "Done.")) for line in spoken)
    if transcript.patient_id:
        assert len(set(after) - set(before)) == made, transcript.text()
        assert len(set(before) - set(after)) == removed, transcript.text()
    said = " ".join(spoken).casefold()
    for other in sandbox.clinic.patients:
        if (other.given, other.family) != (persona.given, persona.family):
            assert f"{other.given} {other.family}".casefold() not in said, transcript.text()
            assert other.family.casefold() not in said.split(), transcript.text()


@pytest.fixture(scope="session")
def converse(agent: Runtime, understanding: Understanding, sandbox: Sandbox) -> Converse:
    return conversation_runner(agent, understanding, sandbox)


def conversation_runner(agent: Runtime, backend: Understanding, sandbox: Sandbox) -> Converse:
    """Holds one simulated conversation with ``agent`` and checks the invariants on ``sandbox``."""

    async def _converse(persona: Persona, *, caller_number: str | None = None) -> Transcript:
        simulator = CallerSimulator(persona)
        transcript = Transcript()
        record = next(
            (
                p
                for p in sandbox.clinic.patients
                if (p.given, p.family, p.birth_date) == (persona.given, persona.family, persona.born)
            ),
            None,
        )
        transcript.patient_id = record.id if record else None
        before = booked(sandbox, record.id) if record else {}
        outbox: asyncio.Queue[str] = asyncio.Queue()

        def emit(line: str) -> None:
            assert "\n" not in line
            transcript.turns.append(("agent", line))
            outbox.put_nowait(line)

        async def lines() -> AsyncIterator[str]:
            while True:
                answer = simulator.answer(await outbox.get())
                while simulator.pending:
                    await simulator.pending.pop(0)
                if answer is None:
                    return
                transcript.turns.append(("caller", answer))
                yield answer

        transcript.end = await run_call(
            agent,
            conversations(agent),
            backend,
            lines(),
            emit,
            caller_number=caller_number,
        )
        transcript.asked = simulator.asked
        check_invariants(sandbox, persona, transcript, before)
        return transcript

    return _converse


def booked(sandbox: Sandbox, patient_id: str) -> dict[str, dict[str, Any]]:
    """The patient's booked appointments as FHIR holds them, by id (read outside the agent)."""
    with sandbox.raw() as raw:
        bundle = raw.get(
            "Appointment", params={"patient": f"Patient/{patient_id}", "status": "booked", "_count": 100}
        ).json()
    return {e["resource"]["id"]: e["resource"] for e in bundle.get("entry", [])}


def status_of(sandbox: Sandbox, appointment_id: str) -> str:
    with sandbox.raw() as raw:
        return str(raw.get(f"Appointment/{appointment_id}").json()["status"])


def slot_status(sandbox: Sandbox, slot_id: str) -> str:
    with sandbox.raw() as raw:
        return str(raw.get(f"Slot/{slot_id}").json()["status"])


def audit_events(agent: Runtime) -> list[dict[str, Any]]:
    from datetime import UTC, datetime, timedelta

    now = datetime.now(UTC)
    return [row["event"] for row in agent.trail.export(now - timedelta(hours=2), now + timedelta(hours=2))]
