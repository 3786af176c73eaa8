"""Shared fixtures: the real FHIR sandbox over mutual TLS, started with the same commands a developer uses
(``voice-agent dev certs``, ``dev fhir --detach``, ``dev seed``) and stopped by its PID at the end."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import pytest

from fhir_adapters import FhirGateway, Scheduling
from voice_agent import wiring
from voice_agent.sandbox.private import Sandbox, free_port, private_sandbox

__all__ = ["Sandbox", "free_port"]


def suite_now() -> datetime | None:
    """The whole suite runs on another date with ``VOICE_AGENT_CLOCK_START=2026-12-31T16:30 pytest``:
    the sandbox's clinic is seeded as of that day and every agent the tests start has its clock there."""
    start = os.environ.get("VOICE_AGENT_CLOCK_START")
    return datetime.fromisoformat(start) if start else None


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with private_sandbox(tmp_path_factory.mktemp("voice-agent-dev"), now=suite_now()) as running:
        yield running


@pytest.fixture
async def gateway(sandbox: Sandbox) -> AsyncIterator[FhirGateway]:
    async with wiring.gateway(sandbox.settings) as fhir:
        yield fhir


@pytest.fixture
def scheduling(sandbox: Sandbox, gateway: FhirGateway) -> Scheduling:
    return wiring.scheduling(sandbox.settings, gateway, now=sandbox.clock)
