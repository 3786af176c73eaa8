"""Latency of each scheduling operation through the scoped gateway, against a private sandbox over mTLS.

    .venv/bin/python bench/fhir_gateway.py [--rounds 30] [--race 10]

Prints p50/p95 per operation (milliseconds) and what a 10-way race for one slot costs. These are the
FHIR share of a caller's wait; the speech budget is in ../shared/models.md.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from fhir_adapters import PatientRef, SlotUnavailable
from voice_agent import wiring
from voice_agent.sandbox.private import Sandbox, private_sandbox


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(samples: dict[str, list[float]], name: str, call: Callable[[], Awaitable[Any]]) -> Any:
    started = time.perf_counter()
    result = await call()
    samples.setdefault(name, []).append((time.perf_counter() - started) * 1000)
    return result


async def run(sandbox: Sandbox, rounds: int, race: int) -> None:
    samples: dict[str, list[float]] = {}
    patients = sandbox.clinic.patients_tagged("pool")
    async with wiring.gateway(sandbox.settings) as fhir:
        scheduling = wiring.scheduling(sandbox.settings, fhir)
        await scheduling.directory()
        for index in range(rounds):
            person = patients[index % len(patients)]
            await timed(samples, "directory (refresh)", lambda: scheduling.directory(refresh=True))
            (ref,) = await timed(
                samples,
                "verify identity",
                partial(
                    scheduling.find_patient,
                    given=person.given,
                    family=person.family,
                    birth_date=person.birth_date,
                ),
            )
            await timed(samples, "upcoming appointments", partial(scheduling.upcoming_appointments, ref))
            first, second = await timed(
                samples, "find 2 free slots", lambda: scheduling.find_free_slots(limit=2)
            )
            booked = await timed(samples, "book", partial(scheduling.book, ref, first.slot_id))
            moved = await timed(
                samples,
                "reschedule",
                partial(scheduling.reschedule, ref, booked.appointment_id, second.slot_id),
            )
            await timed(samples, "cancel", partial(scheduling.cancel, ref, moved.appointment_id))

    race_ms = []
    for _ in range(5):
        gateways = [wiring.gateway(sandbox.settings) for _ in range(race)]
        try:
            offer = (await wiring.scheduling(sandbox.settings, gateways[0]).find_free_slots(limit=1))[0]
            started = time.perf_counter()
            results = await asyncio.gather(
                *(
                    wiring.scheduling(sandbox.settings, g).book(PatientRef(patients[i].id), offer.slot_id)
                    for i, g in enumerate(gateways)
                ),
                return_exceptions=True,
            )
            race_ms.append((time.perf_counter() - started) * 1000)
        finally:
            await asyncio.gather(*(g.aclose() for g in gateways))
        winners = [r for r in results if not isinstance(r, BaseException)]
        assert len(winners) == 1 and all(isinstance(r, SlotUnavailable) for r in results if r not in winners)

    print(f"{'operation':<24}{'p50 ms':>9}{'p95 ms':>9}{'n':>5}")
    for name, values in samples.items():
        print(f"{name:<24}{statistics.median(values):>9.1f}{percentile(values, 0.95):>9.1f}{len(values):>5}")
    label = f"{race}-way race, one slot"
    print(f"{label:<24}{statistics.median(race_ms):>9.1f}{max(race_ms):>9.1f}{len(race_ms):>5}")
    print("(race: every caller answered, exactly one booked, the rest told the slot is gone)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--race", type=int, default=10)
    args = parser.parse_args()
    with private_sandbox() as sandbox:
        asyncio.run(run(sandbox, args.rounds, args.race))


if __name__ == "__main__":
    main()
