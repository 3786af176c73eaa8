"""The SIP path of ``bench/latency.py --sip``: SIPp callers through the kamailio edge to one ``voice-agent
serve`` worker with SIP on, timed from a capture of the calls' RTP (caller side: the end of the caller's
line to the agent's first audio back, as the caller's phone receives it).

SIPp cannot listen, so each caller's side is a timeline (harness/sip/calls.py): the same fixed script as
the WebSocket bench (when is my next appointment, name, date of birth in words, no that's all), with
waits long enough for the agent's replies. A reply is timed only when the agent was quiet as the caller
finished (not talk-over). The agent's stream is also checked against its own media clock.
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from bench import rtp_timing
from harness.browser import Line
from harness.sip.calls import LEAD_SECONDS, answered_within, caller_speech, hearable_patients, place_calls
from harness.sip.edge import free_udp_port, running_edge, wait_for_workers
from harness.sip.sipp import Caller
from harness.voice_server import start_voice_server, stop_voice_server
from voice_agent import wiring
from voice_agent.dialogue import templates
from voice_agent.pipeline.speech_loader import SpeechModels
from voice_agent.pipeline.vocabulary import clinic_vocabulary
from voice_agent.sandbox.clinic import SyntheticPatient
from voice_agent.sandbox.private import Sandbox


@dataclass
class SipScenario:
    calls: int
    voice_to_voice: list[float] = field(default_factory=list)
    answered: int = 0
    completed: int = 0  # the agent ended the call with its goodbye (BYE from the agent)
    agent_gaps_over_100ms: int = 0
    clock_drift_seconds: list[float] = field(default_factory=list)

    def row(self) -> list[str]:
        v2v = self.voice_to_voice
        p50 = f"{statistics.median(v2v):.2f} s" if v2v else "-"
        p95 = f"{rtp_timing.percentile(v2v, 0.95):.2f} s" if v2v else "-"
        worst = f"{max(v2v):.2f} s" if v2v else "-"
        drift = max((abs(d) for d in self.clock_drift_seconds), default=0.0)
        return [
            str(self.calls),
            f"{self.completed}/{self.calls}",
            str(len(v2v)),
            p50,
            p95,
            worst,
            str(self.agent_gaps_over_100ms),
            f"{drift:.2f} s",
        ]


def lines(patient: SyntheticPatient, opening: str, closing: str, born: str) -> list[Line]:
    """The script with waits sized for the agent's replies (a listing can follow verification)."""
    return [
        Line(opening, answered_within(templates.VERIFY_INTRO)),
        Line(f"{patient.given} {patient.family}.", answered_within(templates.ASK_BIRTH_DATE)),
        Line(born, answered_within(templates.VERIFIED + " You have one upcoming appointment: " + "x" * 90)),
        Line(closing, 8.0),
    ]


async def run_sip(
    sandbox: Sandbox,
    work: Path,
    concurrency: list[int],
    rounds: int,
    *,
    opening: str,
    closing: str,
    spoken_birth_date: Callable[[date], str],
    candidates: list[SyntheticPatient],
    stagger: float = 0.0,
) -> list[SipScenario]:
    """``stagger``: seconds between callers' starts within a round (calls arriving apart, as on a real
    line, rather than all in the same second)."""
    sip_port = free_udp_port()
    server = start_voice_server(
        sandbox,
        work / "sip-server",
        VOICE_AGENT_LOG_LEVEL="INFO",
        VOICE_AGENT_SIP_ENABLED="true",
        VOICE_AGENT_SIP_PORT=str(sip_port),
        VOICE_AGENT_SIP_ALLOWED_SOURCES='["127.0.0.1/32"]',
        VOICE_AGENT_SIP_MAX_CALLS="8",
    )
    print(f"SIP server log: {server.log}")
    results = []
    try:
        with running_edge(work / "edge", [("127.0.0.1", sip_port)]) as edge:
            wait_for_workers(edge)
            whisper = SpeechModels(sandbox.settings).whisper()
            async with wiring.gateway(sandbox.settings) as fhir:
                vocabulary = await clinic_vocabulary(wiring.scheduling(sandbox.settings, fhir))
            patients = await asyncio.to_thread(
                hearable_patients,
                candidates,
                whisper,
                vocabulary,
                sandbox.clinic.today,
                wanted=max(concurrency),
            )
            if len(patients) < max(concurrency):
                raise SystemExit(f"only {len(patients)} patients are heard exactly over G.711")
            for n in concurrency:
                scenario = SipScenario(n)
                for round_ in range(rounds):
                    callers = [
                        Caller(
                            number=p.phone,
                            speech=caller_speech(
                                lines(p, opening, closing, spoken_birth_date(p.birth_date)),
                                lead_seconds=LEAD_SECONDS + stagger * index,
                            ),
                        )
                        for index, p in enumerate(patients[:n])
                    ]
                    folder = work / f"sip-{n}-{round_}"
                    placed = await place_calls(folder, edge, callers, timeout=240)
                    streams = rtp_timing.read_streams(folder / "agent-rtp.pcap", placed.run.media_port)
                    for outcome in placed.run.calls:
                        scenario.answered += outcome.answered
                        scenario.completed += outcome.bye_from_agent
                        if outcome.agent_rtp_port in streams:
                            caller, agent = streams[outcome.agent_rtp_port]
                            timing = rtp_timing.timing(outcome.agent_rtp_port, caller, agent)
                            scenario.voice_to_voice += timing.voice_to_voice
                            scenario.agent_gaps_over_100ms += timing.agent_gaps_over_100ms
                            scenario.clock_drift_seconds.append(timing.clock_drift_seconds)
                scenario.calls = n * rounds
                results.append(scenario)
                print(f"  SIP, {n} at once: " + " | ".join(scenario.row()))
    finally:
        stop_voice_server(server)
    return results


HEADER = [
    "SIP calls",
    "completed",
    "replies timed",
    "v2v p50",
    "v2v p95",
    "v2v max",
    "agent RTP gaps >100 ms",
    "agent clock drift",
]
