"""Conversations with a running agent through the text channel's call loop: a simulated caller
(``harness/simulator.py``) answers whatever the agent asks, and every conversation is checked against
what it must satisfy whatever it was about (FHIR changed only as the agent said, no other patient named).
The conversation tests and ``bench/conversations.py`` both run them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from harness.sandbox import Sandbox
from harness.simulator import CallerSimulator, Persona
from voice_agent.dialogue.factory import conversations
from voice_agent.dialogue.understanding import Understanding
from voice_agent.ingress.text import run_call
from voice_agent.runtime import Runtime
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


Converse = Callable[..., Any]


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
