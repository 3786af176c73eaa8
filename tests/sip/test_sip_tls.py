"""SIP over TLS with SRTP required, against a real baresip peer in its own process: a caller hears the
greeting, speaks, keys their date of birth (RFC 4733 events inside SRTP) and is verified; a caller who
talks over the greeting cuts it short (barge-in); the same agent refuses a plain-UDP call, UDP with SRTP,
and TLS without SRTP."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness import caller_audio
from harness.sandbox import Sandbox
from harness.scripted import plain_spoken_patient
from harness.sip.calls import said_in_order
from harness.sip.edge import free_sip_port, free_udp_port
from harness.voice_server import VoiceServer, start_voice_server, stop_voice_server
from voice_agent.pipeline.stt import transcribe

if TYPE_CHECKING:
    from faster_whisper import WhisperModel


@pytest.fixture(scope="module")
def tls_agent(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[VoiceServer, int]]:
    home = tmp_path_factory.mktemp("sip-tls")
    pem = home / "agent-sip.pem"  # baresip wants the certificate and its key in one file
    pem.write_bytes(
        sandbox.certs.path("server.pem").read_bytes() + sandbox.certs.path("server.key").read_bytes()
    )
    pem.chmod(0o600)
    port = free_sip_port()
    server = start_voice_server(
        sandbox,
        home / "product",
        VOICE_AGENT_SIP_ENABLED="true",
        VOICE_AGENT_SIP_PORT=str(port),
        VOICE_AGENT_SIP_TRANSPORT="tls",
        VOICE_AGENT_SIP_TLS_CERT=str(pem),
        VOICE_AGENT_SIP_TLS_CA_FILE=str(sandbox.certs.path("ca.pem")),
        VOICE_AGENT_SIP_SRTP="mandatory",
    )
    try:
        yield server, port
    finally:
        stop_voice_server(server)


def place_call(
    uri: str,
    *,
    transport: str,
    srtp: str,
    ca: Path,
    out: Path,
    listen: float = 9.0,
    timeline: list[dict[str, object]] | None = None,
    answer_within: float = 10,
    host: str = "127.0.0.1",
) -> dict[str, object]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.sip.baresip_caller",
            uri,
            "--transport",
            transport,
            "--srtp",
            srtp,
            "--ca",
            str(ca),
            "--port",
            str(free_udp_port()),
            "--listen",
            str(listen),
            "--host",
            host,
            "--answer-within",
            str(answer_within),
            "--timeline",
            json.dumps(timeline or []),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=listen + 60,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert done.returncode == 0, done.stderr[-2000:]
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    ("transport", "srtp", "port_offset", "host"),
    [
        ("udp", "off", 0, "127.0.0.1"),
        ("udp", "mandatory", 0, "127.0.0.1"),
        ("tls", "off", 1, "127.0.0.1"),
    ],
    ids=["plain-udp", "udp-with-srtp", "tls-without-srtp"],
)
def test_a_call_without_tls_or_srtp_is_refused(
    tls_agent: tuple[VoiceServer, int],
    sandbox: Sandbox,
    tmp_path: Path,
    transport: str,
    srtp: str,
    port_offset: int,
    host: str,
) -> None:
    _, port = tls_agent
    suffix = ";transport=tls" if transport == "tls" else ""
    result = place_call(
        f"sip:agent@127.0.0.1:{port + port_offset}{suffix}",
        transport=transport,
        srtp=srtp,
        ca=sandbox.certs.path("ca.pem"),
        out=tmp_path / "heard.pcm",
        listen=1,
        answer_within=4,  # the agent refuses at once (or never answers); an answer would come in < 1 s
        host=host,
    )
    assert result["established"] is False, result


def caller_line(text: str, folder: Path) -> str:
    """A caller's line as the phone sends it: synthesised, at 8 kHz."""
    path = folder / f"line-{len(list(folder.glob('line-*')))}.pcm"
    path.write_bytes(caller_audio.resample(caller_audio.piper(text), 16_000, 8_000))
    return str(path)


def heard_over_tls(
    tls_agent: tuple[VoiceServer, int],
    sandbox: Sandbox,
    whisper: WhisperModel,
    tmp_path: Path,
    *,
    listen: float,
    timeline: list[dict[str, object]],
) -> str:
    """Call over TLS with SRTP required, play ``timeline``, and return what the caller heard (lower case)."""
    _, port = tls_agent
    heard = tmp_path / "heard.pcm"
    result = place_call(
        f"sip:agent@127.0.0.1:{port + 1};transport=tls",
        transport="tls",
        srtp="mandatory",
        ca=sandbox.certs.path("ca.pem"),
        out=heard,
        listen=listen,
        timeline=timeline,
    )
    assert result["established"], result
    pcm16k = caller_audio.resample(heard.read_bytes(), 8_000, 16_000)
    return transcribe(whisper, pcm16k, beam_size=5).lower()


def test_over_tls_a_caller_speaks_keys_their_birth_date_and_is_verified(
    tls_agent: tuple[VoiceServer, int], sandbox: Sandbox, whisper: WhisperModel, tmp_path: Path
) -> None:
    """Answered over TLS with SRTP: the caller hears the greeting; speech and RFC 4733 keypad digits
    both cross SRTP, and the keyed date of birth verifies the caller."""
    patient = plain_spoken_patient(sandbox)
    words = heard_over_tls(
        tls_agent,
        sandbox,
        whisper,
        tmp_path,
        listen=48,
        timeline=[
            {"at": 12.0, "say": caller_line("When is my next appointment?", tmp_path)},
            {"at": 24.0, "say": caller_line(f"{patient.given} {patient.family}.", tmp_path)},
            {"at": 33.0, "keys": patient.birth_date.strftime("%m%d%Y") + "#"},
        ],
    )
    # Key words in order (tiny.en over G.711 drops a short word now and then): the greeting over SRTP,
    # the name and birth-date questions, then verified.
    assert said_in_order(words, "calling", "first", "last name", "birth", "verified"), words


def test_over_sip_a_caller_who_talks_over_the_greeting_cuts_it_short(
    tls_agent: tuple[VoiceServer, int], sandbox: Sandbox, whisper: WhisperModel, tmp_path: Path
) -> None:
    """Barge-in on SIP: the caller starts speaking 3 s into the greeting; the rest of the greeting is
    dropped from baresip's buffer and the agent answers the caller instead."""
    words = heard_over_tls(
        tls_agent,
        sandbox,
        whisper,
        tmp_path,
        listen=20,
        timeline=[{"at": 3.0, "say": caller_line("I'd like to book an appointment.", tmp_path)}],
    )
    assert said_in_order(words, "first", "last name"), words  # answered
    assert "how can i help you today" not in words, words  # the greeting's last sentence was never played
