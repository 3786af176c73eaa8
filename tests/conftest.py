"""Shared fixtures: the real FHIR sandbox over mutual TLS, started with the same commands a developer uses
(``voice-agent dev certs``, ``dev fhir --detach``, ``dev seed``) and stopped by its PID at the end;
Medplum's FHIR engine, a second server with the same clinic, for the tests that run on both; the running
agent the conversation and security tests talk to; and the product's Whisper model, to hear the agent.
What they are made of lives in ``harness/``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

import pytest

from fhir_adapters import FhirGateway, Scheduling
from harness.real_parts import (
    pytest_configure,
    pytest_runtest_setup,
    pytest_terminal_summary,
    require,
    under_ci,
)
from harness.sandbox import Sandbox, private_sandbox, suite_now
from tests.fhir_engines import ENGINES, medplum_engine
from voice_agent import wiring

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

    from voice_agent.runtime import Runtime

# The real-parts hooks (harness/real_parts.py): an absent part skips locally, named in the summary, and
# fails under CI.
__all__ = ["pytest_configure", "pytest_runtest_setup", "pytest_terminal_summary"]


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
            require("npm")  # absent: a skip named in the summary, a failure under CI (harness/real_parts.py)
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


@pytest.fixture(scope="session")
async def agent(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Runtime]:
    # The suite's callers fail verification on purpose, many times over for a few patients; the limits
    # across calls are tested on an agent of their own (tests/security), at their defaults.
    from voice_agent.runtime import runtime  # imported by the tests that use it only

    settings = sandbox.agent_settings(
        tmp_path_factory.mktemp("agent"),
        clinic_name="Maple Street Clinic",
        verification_identity_limit=100,
        verification_number_limit=100,
    )
    async with runtime(settings) as running:
        yield running


@pytest.fixture(scope="session")
def whisper(sandbox: Sandbox) -> WhisperModel:
    """The product's own speech-to-text model, to hear what the agent said (is it intelligible?)."""
    from voice_agent.pipeline.speech_loader import SpeechModels  # the speech stack: voice tests only

    return SpeechModels(sandbox.settings).whisper()
