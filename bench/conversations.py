"""Conversation benchmark: task success, turns per task and understanding latency, per backend.

    .venv/bin/python bench/conversations.py [--modes rules,hybrid] [--rounds 1]

Runs simulated callers (tests/conversations/simulator.py) through the text channel's call loop against a
private sandbox over mTLS, and checks each outcome in FHIR. "hybrid" needs the local model
(``voice-agent models install``) and llama-cpp-python; without them it is reported as unavailable.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from datetime import time as clock
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.conversations.conftest import booked
from tests.conversations.simulator import CallerSimulator, Persona
from voice_agent.channels.text import run_call
from voice_agent.dialogue.factory import conversations
from voice_agent.dialogue.understanding import Understanding, UnderstandingContext, Understood
from voice_agent.dialogue.understanding.hybrid import build_understanding, warm_understanding
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.runtime import Runtime, runtime
from voice_agent.sandbox.clinic import SyntheticPatient
from voice_agent.sandbox.private import Sandbox, private_sandbox


class Timed:
    """Wraps an understanding backend and records each turn's latency."""

    def __init__(self, inner: Understanding) -> None:
        self.inner = inner
        self.samples: list[float] = []
        self.sources: list[str] = []

    async def understand(self, utterance: str, context: UnderstandingContext) -> Understood:
        started = time.perf_counter()
        result = await self.inner.understand(utterance, context)
        self.samples.append((time.perf_counter() - started) * 1000)
        self.sources.append(result.source)
        return result


@dataclass
class Task:
    kind: str
    patient: SyntheticPatient
    opening: str
    preference: str
    check: Callable[[dict[str, Any], dict[str, Any], Any], bool]


def one_more(before: dict[str, Any], after: dict[str, Any], zone: Any) -> bool:
    return len(after) == len(before) + 1


def one_less(before: dict[str, Any], after: dict[str, Any], zone: Any) -> bool:
    return len(after) == len(before) - 1


def moved(before: dict[str, Any], after: dict[str, Any], zone: Any) -> bool:
    return len(after) == len(before) and set(after) != set(before)


def unchanged(before: dict[str, Any], after: dict[str, Any], zone: Any) -> bool:
    return after == before


def afternoon(before: dict[str, Any], after: dict[str, Any], zone: Any) -> bool:
    new = set(after) - set(before)
    return (
        len(new) == 1
        and clock(12) <= datetime.fromisoformat(after[new.pop()]["start"]).astimezone(zone).time()
    )


def tasks(sandbox: Sandbox) -> list[Task]:
    clinic = sandbox.clinic
    pool = clinic.patients_tagged("pool")
    holders = clinic.patients_tagged("with-appointments")
    openings = [
        ("I'd like to book an appointment", "next week"),
        ("can I see doctor park", "first available"),
        ("I need a flu shot", "first available"),
        ("schedule a checkup please", "in the morning"),
        ("um I need to come in", "Friday"),
        ("book me with Dr. Hernandez", "any time after 3"),
    ]
    found = [Task("book", pool[i], o, p, one_more) for i, (o, p) in enumerate(openings)]
    found.append(Task("book", pool[6], "I'd like an appointment", "next Thursday afternoon", afternoon))
    found += [Task("cancel", holders[i], "I need to cancel my appointment", "", one_less) for i in (0, 1)]
    found += [Task("reschedule", holders[i], "can I move my appointment", "next week", moved) for i in (2, 3)]
    found += [Task("list", holders[i], "when is my next appointment", "", unchanged) for i in (4, 5)]
    return found


async def run_mode(agent: Runtime, sandbox: Sandbox, understanding: Understanding) -> dict[str, Any]:
    timed = Timed(understanding)
    results = []
    for task in tasks(sandbox):
        before = booked(sandbox, task.patient.id)
        persona = Persona(
            given=task.patient.given,
            family=task.patient.family,
            born=task.patient.birth_date,
            opening=task.opening,
            preference=task.preference,
        )
        simulator = CallerSimulator(persona)
        outbox: asyncio.Queue[str] = asyncio.Queue()
        turns = 0

        async def lines(
            sim: CallerSimulator = simulator, box: asyncio.Queue[str] = outbox
        ) -> AsyncIterator[str]:
            nonlocal turns
            while (answer := sim.answer(await box.get())) is not None:
                turns += 1
                yield answer

        end = await run_call(agent, conversations(agent), timed, lines(), outbox.put_nowait)
        ok = end == "goodbye" and task.check(before, booked(sandbox, task.patient.id), sandbox.settings.zone)
        results.append((task.kind, ok, turns))
    return {"results": results, "latency": timed.samples, "llm_turns": timed.sources.count("hybrid")}


def report(mode: str, outcome: dict[str, Any]) -> None:
    results = outcome["results"]
    success = sum(ok for _, ok, _ in results)
    latency = sorted(outcome["latency"])
    print(f"\n{mode}: task success {success}/{len(results)} ({100 * success / len(results):.0f}%)")
    for kind in sorted({k for k, _, _ in results}):
        rows = [(ok, turns) for k, ok, turns in results if k == kind]
        done, turns = sum(ok for ok, _ in rows), statistics.mean(t for _, t in rows)
        print(f"  {kind:<11} {done}/{len(rows)} succeeded, {turns:.1f} caller turns per task")
    p95 = latency[int(0.95 * (len(latency) - 1))]
    print(
        f"  understanding latency per turn: p50 {statistics.median(latency):.2f} ms, p95 {p95:.2f} ms, "
        f"max {latency[-1]:.1f} ms over {len(latency)} turns; model consulted on {outcome['llm_turns']}"
    )


async def main(modes: list[str], now: datetime | None) -> None:
    with private_sandbox(now=now) as sandbox, tempfile.TemporaryDirectory() as home:
        settings = sandbox.agent_settings(Path(home))
        async with runtime(settings) as agent:
            for mode in modes:
                understanding = build_understanding(mode, settings, RulesUnderstanding())  # type: ignore[arg-type]
                if mode != "rules" and isinstance(understanding, RulesUnderstanding):
                    print(
                        f"\n{mode}: unavailable (no local model or llama-cpp-python); see voice-agent models"
                    )
                    continue
                started = time.perf_counter()
                await warm_understanding(understanding)
                print(f"\n{mode}: warmed in {time.perf_counter() - started:.1f} s")
                report(mode, await run_mode(agent, sandbox, understanding))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", default="rules,hybrid")
    parser.add_argument(
        "--now",
        type=datetime.fromisoformat,
        default=None,
        help="run on another date: the clinic seeded as of it and the agent's clock started there "
        "(e.g. 2026-12-31T16:30)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.modes.split(","), args.now))
