"""The private FHIR sandbox the tests and benchmarks run against (``voice_agent.sandbox.private``), and the
date the whole suite may be moved to."""

from __future__ import annotations

import os
from datetime import datetime

from voice_agent.sandbox.private import Sandbox, free_port, private_sandbox

__all__ = ["Sandbox", "free_port", "private_sandbox", "suite_now"]


def suite_now() -> datetime | None:
    """The whole suite runs on another date with ``VOICE_AGENT_CLOCK_START=2026-12-31T16:30 pytest``:
    the sandbox's clinic is seeded as of that day and every agent the tests start has its clock there."""
    start = os.environ.get("VOICE_AGENT_CLOCK_START")
    return datetime.fromisoformat(start) if start else None
