"""Simulated callers from a fixed seed (harness/generator.py): goals crossed with phrasings,
fillers, name and date formats and changes of mind, on a clinic of their own (so their bookings never
meet another test's expectations). Every call must reach its goal as FHIR shows it afterwards, with the
suite's invariants held; a failure prints the call's whole transcript.

``bench/conversations.py --callers 500`` runs the same generator at scale and reports the rates.
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from harness.conversations import booked, conversation_runner
from harness.generator import generate, outcome_ok
from harness.real_parts import require
from harness.sandbox import suite_now
from voice_agent.dialogue.understanding.hybrid import (
    build_understanding,
    close_understanding,
    warm_understanding,
)
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.runtime import Runtime, runtime
from voice_agent.sandbox.clinic import SyntheticPatient
from voice_agent.sandbox.private import Sandbox, private_sandbox

#: Callers per mode: the model is consulted only where the rules are unsure, but each consult costs
#: seconds, so the hybrid run is a sample of the same seed.
CALLERS = {"rules": 70, "hybrid": 12}


@pytest.fixture(scope="module")
def own_clinic() -> Iterator[Sandbox]:
    with private_sandbox(now=suite_now()) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
async def own_agent(own_clinic: Sandbox) -> AsyncIterator[Runtime]:
    with tempfile.TemporaryDirectory() as home:
        settings = own_clinic.agent_settings(
            Path(home), verification_identity_limit=10_000, verification_number_limit=10_000
        )
        async with runtime(settings) as agent:
            yield agent


@pytest.mark.parametrize("mode", ["rules", "hybrid"])
async def test_generated_callers_reach_their_goals(
    own_clinic: Sandbox, own_agent: Runtime, mode: str
) -> None:
    if mode != "rules":
        require("llama-cpp-python", own_agent.settings.llm_model)
    backend = build_understanding(mode, own_agent.settings, RulesUnderstanding())  # type: ignore[arg-type]
    assert mode == "rules" or not isinstance(backend, RulesUnderstanding), "the hybrid fell back to rules"
    await warm_understanding(backend)
    sandbox = own_clinic
    converse = conversation_runner(own_agent, backend, sandbox)
    patients = [p for p in sandbox.clinic.patients if "same-name" not in p.tags]
    today = sandbox.clock().date()

    def holders() -> list[SyntheticPatient]:
        return [p for p in patients if booked(sandbox, p.id)]

    failures: list[str] = []
    try:
        for call in generate(7, CALLERS[mode], patients=patients, holders=holders, today=today):
            before = booked(sandbox, call.patient.id)
            transcript = await converse(call.persona)
            after = booked(sandbox, call.patient.id)
            if transcript.end != "goodbye" or not outcome_ok(
                call, before, after, zone=sandbox.settings.zone, today=today, agent_said=transcript.agent
            ):
                failures.append(f"--- {call.describe()}\n{transcript.text()}")
    finally:
        await close_understanding(backend)
    assert not failures, "\n".join(failures)
