"""Caller-side timing of SIP calls from a capture of their RTP (both directions of the caller's media port):
when each caller line ended, when the agent's reply began, and how the agent's stream kept time.

    .venv/bin/python bench/rtp_timing.py CAPTURE.pcap CALLER_MEDIA_PORT [--json]

Used by ``bench/latency.py --sip`` and on its own for a long call (does latency creep up over 15 minutes?
does the agent's RTP keep the wall clock?). Loudness is judged per 20 ms packet, as a listener would.
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import dpkt
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from harness import caller_audio

#: A packet whose peak is above this is speech (the same threshold the WebSocket caller uses).
LOUD = 500
#: A caller line has ended after this much quiet (longer than piper's pauses inside a sentence).
LINE_END_SECONDS = 0.7


@dataclass
class Packet:
    at: float  # capture time, seconds
    timestamp: int  # RTP timestamp
    loud: bool


@dataclass
class CallTiming:
    agent_port: int
    voice_to_voice: list[float] = field(default_factory=list)  # per answered caller line, in order
    agent_packets: int = 0
    agent_wall_seconds: float = 0.0  # first to last agent packet, by the capture's clock
    agent_rtp_seconds: float = 0.0  # the same span by the agent's RTP timestamps
    agent_gaps_over_100ms: int = 0

    @property
    def clock_drift_seconds(self) -> float:
        """Wall time the agent's stream spans beyond its own media clock (0 for a steady sender)."""
        return self.agent_wall_seconds - self.agent_rtp_seconds


def read_streams(pcap: Path, caller_media_port: int) -> dict[int, tuple[list[Packet], list[Packet]]]:
    """Per agent RTP port: (caller → agent packets, agent → caller packets), G.711 only, in capture order."""
    caller: dict[int, list[Packet]] = defaultdict(list)
    agent: dict[int, list[Packet]] = defaultdict(list)
    with pcap.open("rb") as handle:
        for at, frame in dpkt.pcap.Reader(handle):
            ip = dpkt.ethernet.Ethernet(frame).data
            if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) or not isinstance(ip.data, dpkt.udp.UDP):
                continue
            udp = ip.data
            data = bytes(udp.data)
            if len(data) <= 12 or data[0] >> 6 != 2 or data[1] & 0x7F not in (0, 8):
                continue
            (timestamp,) = struct.unpack("!I", data[4:8])
            payload = data[12 + 4 * (data[0] & 0x0F) :]
            pcm = caller_audio.ulaw_decode(payload) if data[1] & 0x7F == 0 else _alaw(payload)
            loud = int(np.abs(np.frombuffer(pcm, dtype=np.int16)).max(initial=0)) > LOUD
            packet = Packet(float(at), timestamp, loud)
            if udp.sport == caller_media_port:
                caller[int(udp.dport)].append(packet)
            elif udp.dport == caller_media_port:
                agent[int(udp.sport)].append(packet)
    return {port: (caller.get(port, []), agent[port]) for port in agent}


def line_ends(packets: list[Packet]) -> list[float]:
    """Capture times at which the caller's lines ended (last loud packet before a long quiet)."""
    ends, last_loud = [], None
    for packet in packets:
        if packet.loud:
            if last_loud is not None and packet.at - last_loud > LINE_END_SECONDS:
                ends.append(last_loud)
            last_loud = packet.at
    if last_loud is not None:
        ends.append(last_loud)
    return ends


def timing(agent_port: int, caller: list[Packet], agent: list[Packet]) -> CallTiming:
    result = CallTiming(agent_port, agent_packets=len(agent))
    if agent:
        result.agent_wall_seconds = agent[-1].at - agent[0].at
        result.agent_rtp_seconds = ((agent[-1].timestamp - agent[0].timestamp) & 0xFFFFFFFF) / 8000
        result.agent_gaps_over_100ms = sum(b.at - a.at > 0.1 for a, b in itertools.pairwise(agent))
    loud_agent = [p.at for p in agent if p.loud]
    for end in line_ends(caller):
        # the agent must have been quiet when the caller finished (a reply, not talk-over)...
        if any(end - 0.3 < t <= end for t in loud_agent):
            continue
        reply = next((t for t in loud_agent if t > end), None)
        if reply is not None and reply - end < 10:  # ...and answer within 10 s (else: no reply to it)
            result.voice_to_voice.append(reply - end)
    return result


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _alaw(payload: bytes) -> bytes:
    from harness.sip.rtp import alaw_decode

    return alaw_decode(payload)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pcap", type=Path)
    parser.add_argument("caller_media_port", type=int)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    calls = [timing(port, c, a) for port, (c, a) in read_streams(args.pcap, args.caller_media_port).items()]
    if args.json:
        print(
            json.dumps([call.__dict__ | {"clock_drift_seconds": call.clock_drift_seconds} for call in calls])
        )
        return
    for call in calls:
        v2v = call.voice_to_voice
        print(f"agent port {call.agent_port}: {len(v2v)} replies")
        if v2v:
            third = max(1, len(v2v) // 3)
            print(
                f"  voice-to-voice p50 {statistics.median(v2v):.2f} s, p95 {percentile(v2v, 0.95):.2f} s; "
                f"first third median {statistics.median(v2v[:third]):.2f} s, "
                f"last third median {statistics.median(v2v[-third:]):.2f} s"
            )
        print(
            f"  agent stream: {call.agent_packets} packets over {call.agent_wall_seconds:.1f} s wall, "
            f"{call.agent_rtp_seconds:.1f} s of media clock (drift {call.clock_drift_seconds:+.2f} s), "
            f"{call.agent_gaps_over_100ms} gaps over 100 ms"
        )


if __name__ == "__main__":
    main()
