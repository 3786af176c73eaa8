"""One ``voice-agent serve`` with SIP on (a free UDP port on 127.0.0.1, the front desk at a SIP address
nobody answers, open around the clock) behind the edge proxy running ``deploy/sip/kamailio.cfg``."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from harness.sandbox import Sandbox
from harness.sip.calls import hearable_patients
from harness.sip.edge import Edge, free_sip_port, free_udp_port, running_edge, wait_for_workers
from harness.voice_server import SipAgent, start_voice_server, stop_voice_server
from voice_agent import wiring
from voice_agent.pipeline.vocabulary import clinic_vocabulary
from voice_agent.sandbox.clinic import SyntheticPatient

if TYPE_CHECKING:
    from faster_whisper import WhisperModel


@pytest.fixture(scope="session")
def sip_agent(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SipAgent]:
    sip_port = free_sip_port()
    front_desk = f"sip:frontdesk@127.0.0.1:{free_udp_port()}"
    server = start_voice_server(
        sandbox,
        tmp_path_factory.mktemp("sip") / "product",
        VOICE_AGENT_SIP_ENABLED="true",
        VOICE_AGENT_SIP_HOST="127.0.0.1",
        VOICE_AGENT_SIP_PORT=str(sip_port),
        VOICE_AGENT_SIP_TRANSPORT="udp",
        VOICE_AGENT_SIP_ALLOWED_SOURCES='["127.0.0.1/32"]',  # the edge (and, on loopback, every test peer)
        VOICE_AGENT_SIP_TRUST_ASSERTED_IDENTITY="true",  # the edge passes on only the trunk's PAI
        VOICE_AGENT_SIP_MAX_CALLS="8",
        VOICE_AGENT_FRONT_DESK_SIP_URI=front_desk,
        VOICE_AGENT_FRONT_DESK_HOURS="Mo-Su 00:00-24:00",
    )
    try:
        yield SipAgent(server, sip_port, front_desk)
    finally:
        stop_voice_server(server)


@pytest.fixture(scope="session")
def edge(sip_agent: SipAgent, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    workers = [("127.0.0.1", sip_agent.sip_port)]
    # SIPp plays the trunk, which attests the caller number (P-Asserted-Identity)
    with running_edge(tmp_path_factory.mktemp("edge"), workers, asserting=("127.0.0.1",)) as running:
        wait_for_workers(running)  # the agent answered the edge's OPTIONS
        yield running


@pytest.fixture(scope="session")
async def phone_patients(sandbox: Sandbox, whisper: WhisperModel) -> list[SyntheticPatient]:
    """Eight pool patients whose name and birth date the agent hears right over the telephone: one books
    alone, eight book across two workers, four of them at once on one (test_scale_out)."""
    async with wiring.gateway(sandbox.settings) as fhir:
        vocabulary = await clinic_vocabulary(wiring.scheduling(sandbox.settings, fhir))
    pool = sandbox.clinic.patients_tagged("pool")
    found = await asyncio.to_thread(
        hearable_patients, pool, whisper, vocabulary, sandbox.clinic.today, wanted=8
    )
    assert len(found) == 8, f"only {len(found)} pool patients are heard right over G.711"
    return found
