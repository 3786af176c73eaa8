"""Start-up check: can the agent reach FHIR through its gateway, and what does it learn of the clinic?"""

from __future__ import annotations

from collections.abc import Callable

from fhir_adapters import FhirError
from voice_agent.runtime import runtime
from voice_agent.settings import Settings


async def describe_clinic(settings: Settings, say: Callable[[str], object]) -> int:
    """Prints the practitioners and visit types learned from Schedules (an audited read, like any other).
    Returns a process exit code."""
    try:
        async with runtime(settings) as agent:
            directory = await agent.scheduling.directory()
    except FhirError as error:
        say(f"FHIR check failed: {error}")
        return 1
    say(f"FHIR {settings.fhir_base_url}: reachable over mutual TLS as the agent's service identity.")
    for schedule in directory.schedules:
        visits = ", ".join(v.display for v in schedule.visit_types) or "no visit types"
        say(f"  {schedule.practitioner}: {visits}")
    if not directory.schedules:
        say("  No active schedules: the agent has nothing to offer callers.")
        return 1
    return 0
