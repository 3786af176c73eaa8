"""Conversation benchmark: simulated callers from a seed, scored on what FHIR shows afterwards.

    .venv/bin/python bench/conversations.py [--callers 500] [--seed 1] [--modes rules,hybrid] [--now ISO]

Each caller comes from ``harness/generator.py``: a goal (book, cancel, reschedule, list, or
cancel then book) crossed with openings, fillers, name and date formats, time wishes ("lunchtime", "the
week after next", "Tuesday, no wait, Thursday") and changes of mind at the read-back. Calls go through the
text channel's call loop against a private sandbox over mTLS, with the suite's invariants checked on each
(FHIR changed only as the agent said; no other patient named). Reports task success per goal, caller
turns per goal (median), understanding latency, and every failed call's transcript.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.conversations import Transcript, booked, conversation_runner
from harness.generator import GeneratedCall, generate, outcome_ok
from voice_agent.dialogue.understanding import Understanding, UnderstandingContext, Understood
from voice_agent.dialogue.understanding.hybrid import build_understanding, warm_understanding
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.runtime import Runtime, runtime
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


def holders_of(sandbox: Sandbox) -> list[Any]:
    """Patients who hold a booked appointment now (bookings during the run make more of them)."""
    return [p for p in sandbox.clinic.patients if "same-name" not in p.tags and booked(sandbox, p.id)]


async def run_mode(
    agent: Runtime, sandbox: Sandbox, understanding: Understanding, callers: int, seed: int
) -> dict[str, Any]:
    timed = Timed(understanding)
    converse = conversation_runner(agent, timed, sandbox)
    patients = [p for p in sandbox.clinic.patients if "same-name" not in p.tags]
    today = sandbox.clock().date()
    calls = generate(seed, callers, patients=patients, holders=lambda: holders_of(sandbox), today=today)
    results: list[tuple[GeneratedCall, bool, int, str]] = []
    for call in calls:
        before = booked(sandbox, call.patient.id)
        transcript: Transcript | None = None
        try:
            transcript = await converse(call.persona)
            ok = transcript.end == "goodbye" and outcome_ok(
                call,
                before,
                booked(sandbox, call.patient.id),
                zone=sandbox.settings.zone,
                today=today,
                agent_said=transcript.agent,
            )
            text = transcript.text()
        except AssertionError as broken:  # an invariant: counted as a failure, with what was said
            ok, text = False, f"invariant broken: {broken}"
        turns = sum(who == "caller" for who, _ in transcript.turns) if transcript else 0
        results.append((call, ok, turns, text))
    return {"results": results, "latency": timed.samples, "llm_turns": timed.sources.count("hybrid")}


def report(mode: str, outcome: dict[str, Any], *, transcripts: int) -> None:
    results = outcome["results"]
    success = sum(ok for _, ok, _, _ in results)
    latency = sorted(outcome["latency"])
    print(f"\n{mode}: task success {success}/{len(results)} ({100 * success / len(results):.1f}%)")
    for kind in sorted({c.kind for c, *_ in results}):
        rows = [(ok, turns) for c, ok, turns, _ in results if c.kind == kind]
        done = sum(ok for ok, _ in rows)
        median = statistics.median(t for ok, t in rows if ok) if done else float("nan")
        print(f"  {kind:<12} {done}/{len(rows)} succeeded; median {median:.0f} caller turns when it did")
    styles = Counter(c.persona.name_style for c, ok, *_ in results if not ok)
    if styles:
        print(f"  failures by name style: {dict(styles)}")
    p95 = latency[int(0.95 * (len(latency) - 1))]
    print(
        f"  understanding latency per turn: p50 {statistics.median(latency):.2f} ms, p95 {p95:.2f} ms, "
        f"max {latency[-1]:.1f} ms over {len(latency)} turns; model consulted on {outcome['llm_turns']}"
    )
    failed = [(c, text) for c, ok, _, text in results if not ok]
    for call, text in failed[:transcripts]:
        print(f"\n--- failed: {call.describe()}\n{text}")
    if len(failed) > transcripts:
        print(f"\n({len(failed) - transcripts} more failures; --transcripts N shows more)")


async def main(modes: list[str], now: datetime | None, callers: int, seed: int, transcripts: int) -> None:
    with private_sandbox(now=now) as sandbox, tempfile.TemporaryDirectory() as home:
        settings = sandbox.agent_settings(
            Path(home), verification_identity_limit=10_000, verification_number_limit=10_000
        )
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
                started = time.perf_counter()
                outcome = await run_mode(agent, sandbox, understanding, callers, seed)
                print(f"{mode}: {callers} callers in {time.perf_counter() - started:.0f} s")
                report(mode, outcome, transcripts=transcripts)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--modes", default="rules,hybrid")
    parser.add_argument("--callers", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--transcripts", type=int, default=10, help="failed calls to print whole")
    parser.add_argument(
        "--now",
        type=datetime.fromisoformat,
        default=None,
        help="run on another date: the clinic seeded as of it and the agent's clock started there "
        "(e.g. 2026-12-31T16:30)",
    )
    args = parser.parse_args()
    asyncio.run(main(args.modes.split(","), args.now, args.callers, args.seed, args.transcripts))
