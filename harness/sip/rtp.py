"""What the caller heard on a SIP call: the agent's RTP, captured with tcpdump on ``lo`` and decoded.

SIPp can send a caller's voice but not listen, so the tests capture the media port the SIPp caller
offers (``-mp``): every agent → caller packet goes there. ``Capture`` runs tcpdump into a pcap under the
test's tmp dir; ``agent_streams`` reads it (dpkt) and gives each stream, keyed by the agent's RTP port
(which the SIPp scenario logs per call from the agent's SDP), as 16 kHz PCM for the product's Whisper.
"""

from __future__ import annotations

import shutil
import signal
import struct
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import dpkt
import numpy as np

from harness import caller_audio

PCMU, PCMA = 0, 8
_RTP_HEADER = 12


@dataclass
class Capture:
    """tcpdump on the loopback interface, UDP to or from ``port`` only, for one test."""

    pcap: Path
    port: int
    process: subprocess.Popen[bytes] | None = None
    _stderr: Path = field(init=False)

    def __post_init__(self) -> None:
        self._stderr = self.pcap.with_suffix(".tcpdump.log")

    def start(self) -> Capture:
        tcpdump = shutil.which("tcpdump") or "/usr/bin/tcpdump"
        # -U: write each packet at once (the pcap is complete when tcpdump stops); -Z root: do not drop
        # to the "tcpdump" user, who may not write the test's tmp dir.
        capture_filter = ["udp", "and", "port", str(self.port)]
        self.process = subprocess.Popen(
            [tcpdump, "-i", "lo", "-n", "-U", "-Z", "root", "-s", "0", "-w", str(self.pcap), *capture_filter],
            stdout=subprocess.DEVNULL,
            stderr=self._stderr.open("wb"),
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # "listening on lo" once the capture is really on
            if "listening on" in self._stderr.read_text(errors="replace"):
                return self
            if self.process.poll() is not None:
                raise RuntimeError("tcpdump exited: " + self._stderr.read_text(errors="replace"))
            time.sleep(0.05)
        raise RuntimeError("tcpdump did not start: " + self._stderr.read_text(errors="replace"))

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)  # flushes and closes the pcap
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


@dataclass
class Stream:
    """One RTP stream to the caller: packets of one SSRC from one agent port, in sequence order."""

    agent_port: int
    ssrc: int
    payload_type: int
    payloads: dict[int, bytes] = field(default_factory=dict)  # extended sequence number -> payload
    first_seen: float = 0.0

    def pcm16k(self) -> bytes:
        """The stream as 16 kHz int16 PCM; a lost packet is replaced by silence of the same length."""
        if not self.payloads:
            return b""
        sequence = sorted(self.payloads)
        size = len(self.payloads[sequence[0]])
        pieces = []
        for number in range(sequence[0], sequence[-1] + 1):
            pieces.append(self.payloads.get(number, _silence_byte(self.payload_type) * size))
        g711 = b"".join(pieces)
        linear = caller_audio.ulaw_decode(g711) if self.payload_type == PCMU else alaw_decode(g711)
        return caller_audio.resample(linear, caller_audio.TELEPHONE_RATE, caller_audio.SAMPLE_RATE)


def agent_streams(pcap: Path, caller_media_port: int) -> dict[int, list[Stream]]:
    """Every G.711 RTP stream sent to ``caller_media_port``, by the agent's (source) port.

    A call normally has one stream per agent port; a re-INVITE may restart it with a new SSRC, so each
    port maps to its streams in order of appearance (``heard`` joins them)."""
    streams: dict[tuple[int, int], Stream] = {}
    last_sequence: dict[tuple[int, int], int] = {}
    with pcap.open("rb") as handle:
        for at, frame in dpkt.pcap.Reader(handle):
            packet = _udp(frame)
            if packet is None:
                continue
            source_port, destination_port, data = packet
            if destination_port != caller_media_port or len(data) <= _RTP_HEADER or data[0] >> 6 != 2:
                continue
            payload_type = data[1] & 0x7F
            if payload_type not in (PCMU, PCMA):
                continue  # telephone-event, comfort noise: not speech
            sequence, _timestamp, ssrc = struct.unpack("!HII", data[2:12])
            key = (source_port, ssrc)
            stream = streams.get(key)
            if stream is None:
                stream = streams[key] = Stream(source_port, ssrc, payload_type, first_seen=at)
            extended = _extend(sequence, last_sequence.get(key))
            last_sequence[key] = extended
            stream.payloads[extended] = data[_rtp_payload_offset(data) :]
    by_port: dict[int, list[Stream]] = defaultdict(list)
    for stream in sorted(streams.values(), key=lambda s: s.first_seen):
        by_port[stream.agent_port].append(stream)
    return dict(by_port)


def heard(pcap: Path, caller_media_port: int, agent_port: int) -> bytes:
    """All the caller heard from the agent's ``agent_port``, as 16 kHz PCM."""
    streams = agent_streams(pcap, caller_media_port).get(agent_port, [])
    return b"".join(s.pcm16k() for s in streams)


# ------------------------------------------------------------------------------------------ internals


def _udp(frame: bytes) -> tuple[int, int, bytes] | None:
    """(source port, destination port, payload) of a UDP/IPv4 or IPv6 packet in a Linux loopback capture
    (Ethernet framing on ``lo``)."""
    ethernet = dpkt.ethernet.Ethernet(frame)
    ip = ethernet.data
    if not isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6) or not isinstance(ip.data, dpkt.udp.UDP):
        return None
    udp = ip.data
    return int(udp.sport), int(udp.dport), bytes(udp.data)


def _rtp_payload_offset(data: bytes) -> int:
    """Header length: 12 bytes, the CSRC list, and a header extension if the X bit is set."""
    offset = _RTP_HEADER + 4 * (data[0] & 0x0F)
    if data[0] & 0x10 and len(data) >= offset + 4:
        (words,) = struct.unpack("!H", data[offset + 2 : offset + 4])
        offset += 4 + 4 * words
    return offset


def _extend(sequence: int, previous: int | None) -> int:
    """A 16-bit RTP sequence number made monotonic across wrap-arounds (RFC 3550, A.1)."""
    if previous is None:
        return sequence
    candidate = (previous & ~0xFFFF) | sequence
    if candidate < previous - 0x8000:
        candidate += 0x10000
    elif candidate > previous + 0x8000:
        candidate -= 0x10000
    return candidate


def _silence_byte(payload_type: int) -> bytes:
    return b"\xff" if payload_type == PCMU else b"\xd5"


def alaw_decode(alaw: bytes) -> bytes:
    """G.711 A-law to int16 PCM at the same rate (bit-exact with ``audioop.alaw2lin``)."""
    return _ALAW_DECODE[np.frombuffer(alaw, dtype=np.uint8)].astype("<i2").tobytes()


def _alaw_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    segment = (code & 0x70) >> 4
    value = (code & 0x0F) << 4
    shifted = (value + 0x108) << np.maximum(segment - 1, 0)
    value = np.where(segment == 0, value + 8, np.where(segment == 1, value + 0x108, shifted))
    return np.where(code & 0x80, value, -value).astype(np.int16)


_ALAW_DECODE = _alaw_table()
