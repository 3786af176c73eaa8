"""Shared fixtures: the real FHIR sandbox over mutual TLS, started with the same commands a developer uses
(``voice-agent dev certs``, ``dev fhir --detach``, ``dev seed``) and stopped by its PID at the end; and
Medplum's FHIR engine, a second server with the same clinic, for the tests that run on both."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from datetime import datetime

import pytest

from fhir_adapters import FhirGateway, Scheduling
from tests.fhir_engines import ENGINES, medplum_engine
from tests.real_parts import (
    pytest_configure,
    pytest_runtest_setup,
    pytest_terminal_summary,
    require,
    under_ci,
)
from voice_agent import wiring
from voice_agent.sandbox.private import Sandbox, free_port, private_sandbox

# The real-parts hooks (tests/real_parts.py): an absent part skips locally, named in the summary, and fails
# under CI.
__all__ = ["Sandbox", "free_port", "pytest_configure", "pytest_runtest_setup", "pytest_terminal_summary"]


def suite_now() -> datetime | None:
    """The whole suite runs on another date with ``VOICE_AGENT_CLOCK_START=2026-12-31T16:30 pytest``:
    the sandbox's clinic is seeded as of that day and every agent the tests start has its clock there."""
    start = os.environ.get("VOICE_AGENT_CLOCK_START")
    return datetime.fromisoformat(start) if start else None


@pytest.fixture(scope="session")
def sekmet_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    with private_sandbox(tmp_path_factory.mktemp("voice-agent-dev"), now=suite_now()) as running:
        yield running


@pytest.fixture(scope="session")
def sandbox(sekmet_sandbox: Sandbox) -> Sandbox:
    """The FHIR server of every test that names no engine: the sekmet sandbox. A module whose tests run
    on both engines overrides it with ``fhir_engine`` (``def sandbox(fhir_engine): return fhir_engine``)."""
    return sekmet_sandbox


@pytest.fixture(scope="session")
def medplum_sandbox(sekmet_sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """Medplum's FHIR engine with the sandbox's clinic, clock and PKI, started once (about 3 s; its npm
    install, once per lock, about 15 s more). Without npm, or a Node.js 22 for it, it is a skip on a
    laptop and a failure under CI."""
    with contextlib.ExitStack() as stack:
        try:
            running = stack.enter_context(
                medplum_engine.medplum_sandbox(sekmet_sandbox, tmp_path_factory.mktemp("medplum"))
            )
        except medplum_engine.EngineUnavailable as missing:
            require("npm")  # absent: a skip named in the summary, a failure under CI (tests/real_parts.py)
            if under_ci():
                pytest.fail(f"Medplum's FHIR engine cannot run: {missing}")
            pytest.skip(f"Medplum's FHIR engine cannot run: {missing}")
        yield running


@pytest.fixture(scope="session", params=ENGINES)
def fhir_engine(request: pytest.FixtureRequest) -> Sandbox:
    """Each FHIR engine in turn (test ids end in [sekmet] or [medplum])."""
    engine: Sandbox = request.getfixturevalue(f"{request.param}_sandbox")
    return engine


@pytest.fixture
async def gateway(sandbox: Sandbox) -> AsyncIterator[FhirGateway]:
    async with wiring.gateway(sandbox.settings) as fhir:
        yield fhir


@pytest.fixture
def scheduling(sandbox: Sandbox, gateway: FhirGateway) -> Scheduling:
    return wiring.scheduling(sandbox.settings, gateway, now=sandbox.clock)
