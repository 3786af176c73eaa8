"""The RTP decoder the SIP tests hear the agent through: a pcap written here (dpkt), as tcpdump writes one
on ``lo``, with a sequence wrap-around, a lost packet, packets out of order and traffic to other ports."""

from __future__ import annotations

import struct
from pathlib import Path

import dpkt
import numpy as np

from harness import caller_audio
from harness.sip.rtp import PCMA, PCMU, agent_streams, heard

CALLER_PORT, AGENT_PORT = 40000, 31000


def rtp(sequence: int, payload: bytes, *, payload_type: int = PCMU, ssrc: int = 0x1234) -> bytes:
    return struct.pack("!BBHII", 0x80, payload_type, sequence & 0xFFFF, sequence * 160, ssrc) + payload


def udp_frame(source_port: int, destination_port: int, data: bytes) -> bytes:
    udp = dpkt.udp.UDP(sport=source_port, dport=destination_port, data=data)
    udp.ulen = len(udp)
    ip = dpkt.ip.IP(src=b"\x7f\x00\x00\x01", dst=b"\x7f\x00\x00\x01", p=dpkt.ip.IP_PROTO_UDP, data=udp)
    ip.len = len(ip)
    return bytes(
        dpkt.ethernet.Ethernet(src=b"\0" * 6, dst=b"\0" * 6, type=dpkt.ethernet.ETH_TYPE_IP, data=ip)
    )


def write_pcap(path: Path, frames: list[bytes]) -> None:
    with path.open("wb") as handle:
        writer = dpkt.pcap.Writer(handle)
        for index, frame in enumerate(frames):
            writer.writepkt(frame, ts=1_700_000_000 + index * 0.02)


def test_the_agent_stream_is_put_back_in_order_across_a_wrap_with_a_loss_as_silence(tmp_path: Path) -> None:
    tone = (8000 * np.sin(np.arange(160 * 6) * 2 * np.pi * 440 / 8000)).astype("<i2").tobytes()
    ulaw = caller_audio.ulaw_encode(tone)
    chunks = [ulaw[i * 160 : (i + 1) * 160] for i in range(6)]
    sequences = [65533, 65534, 65535, 0, 1, 2]
    frames = [udp_frame(AGENT_PORT, CALLER_PORT, rtp(s, c)) for s, c in zip(sequences, chunks, strict=True)]
    frames[2], frames[3] = frames[3], frames[2]  # reordered on the way
    del frames[4]  # sequence 1 lost
    frames.append(udp_frame(CALLER_PORT, AGENT_PORT, rtp(7, b"\xff" * 160)))  # the caller's own voice
    frames.append(udp_frame(AGENT_PORT, 5060, b"SIP/2.0 200 OK\r\n\r\n"))  # not to the caller's media port
    frames.append(udp_frame(AGENT_PORT, CALLER_PORT, rtp(3, b"\x01" * 4, payload_type=101)))  # a DTMF event
    pcap = tmp_path / "rtp.pcap"
    write_pcap(pcap, frames)

    streams = agent_streams(pcap, CALLER_PORT)
    assert list(streams) == [AGENT_PORT] and len(streams[AGENT_PORT]) == 1
    assert sorted(streams[AGENT_PORT][0].payloads) == [65533, 65534, 65535, 65536, 65538]
    pcm = np.frombuffer(heard(pcap, CALLER_PORT, AGENT_PORT), dtype="<i2")
    assert len(pcm) == 6 * 320  # six 20 ms packets at 16 kHz, the lost one as silence
    fifth = pcm[4 * 320 + 40 : 5 * 320 - 40]
    assert np.abs(fifth).max() < 500 < np.abs(pcm[: 3 * 320]).max()


def test_a_law_is_decoded_too(tmp_path: Path) -> None:
    pcap = tmp_path / "alaw.pcap"
    write_pcap(
        pcap, [udp_frame(AGENT_PORT, CALLER_PORT, rtp(n, b"\xd5" * 160, payload_type=PCMA)) for n in range(3)]
    )
    pcm = np.frombuffer(heard(pcap, CALLER_PORT, AGENT_PORT), dtype="<i2")
    assert len(pcm) == 3 * 320 and np.abs(pcm).max() < 16  # A-law 0xd5: +8, the smallest level
