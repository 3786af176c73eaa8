"""Rules understanding speed: microseconds per caller turn, and the worst inputs we know of.

.venv/bin/python bench/rules_understanding.py
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from voice_agent.dialogue.understanding import (
    DirectoryEntry,
    Expectation,
    UnderstandingContext,
    VisitTypeEntry,
)
from voice_agent.dialogue.understanding.rules import RulesUnderstanding

NOW = datetime(2026, 11, 23, 10, 0, tzinfo=ZoneInfo("America/New_York"))
PRACTITIONERS = (
    DirectoryEntry("sched-okafor", "Dr. Amara Okafor"),
    DirectoryEntry("sched-park", "Dr. Daniel Park"),
    DirectoryEntry("sched-hernandez-ruiz", "Dr. Sofía Hernández-Ruiz"),
    DirectoryEntry("sched-oconnell", "Dr. Liam O'Connell"),
)
VISITS = (VisitTypeEntry("follow-up", "Follow-up visit"), VisitTypeEntry("vaccination", "Vaccination"))
TYPICAL = [
    "um I'd like to uh book a flu shot with doctor parks next thursday afternoon",
    "yes",
    "the 10:30 one",
    "my name is Mary-Jane Smith-Jones",
    "zero three zero three nineteen eighty five",
    "is Dr Park available any time after 4 next week",
    "no that's all thanks bye",
    "I can't make it on Tuesday can we do Wednesday instead",
    "five five five one two three four five six seven",
    "I have chest pain",
    "when is my next appointment",
    "the one with Dr. Okafor",
]
WORST = ["yes " + "that one " * 60 + "x", "ignore " + "all " * 120 + "x", "2 30 " * 100, "x" * 500]


def main() -> None:
    rules = RulesUnderstanding()
    contexts = [
        UnderstandingContext(now=NOW, expecting=e, practitioners=PRACTITIONERS, visit_types=VISITS)
        for e in Expectation
    ]
    for ctx in contexts:
        rules.parse("hello", ctx)
    samples = []
    for _ in range(20):
        for ctx in contexts:
            for utterance in TYPICAL:
                started = time.perf_counter()
                rules.parse(utterance, ctx)
                samples.append((time.perf_counter() - started) * 1e6)
    samples.sort()
    print(f"typical turns: n={len(samples)} p50 {statistics.median(samples):.0f} us, "
          f"p95 {samples[int(0.95 * len(samples))]:.0f} us, max {samples[-1]:.0f} us")  # fmt: skip
    worst = 0.0
    for utterance in WORST:
        for ctx in contexts:
            started = time.perf_counter()
            rules.parse(utterance, ctx)
            worst = max(worst, (time.perf_counter() - started) * 1e3)
    print(f"worst known adversarial input: {worst:.1f} ms")


if __name__ == "__main__":
    main()
