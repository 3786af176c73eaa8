"""``voice-agent serve`` as a clinic's IT team and a browser see it: TLS, a locked-down page, honest
health, metrics without call data, and media streams refused unless they are what the path says."""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import get_args

import httpx
import pytest
import websockets

from harness.voice_server import VoiceServer
from voice_agent.audit.events import CallRefusal
from voice_agent.pipeline.metrics import EndedBy


def test_serves_only_over_tls_with_the_configured_certificate(voice_server: VoiceServer) -> None:
    with voice_server.client() as client:
        assert client.get("/healthz").json()["status"] == "ok"
    # a client that does not trust the clinic's CA is refused at the handshake
    with pytest.raises(httpx.ConnectError), httpx.Client(verify=True, trust_env=False) as stranger:
        stranger.get(f"{voice_server.base_url}/healthz")
    with pytest.raises(httpx.HTTPError), httpx.Client(trust_env=False) as plain:
        plain.get(voice_server.base_url.replace("https://", "http://") + "/healthz")


def test_the_patient_page_loads_nothing_from_elsewhere(voice_server: VoiceServer) -> None:
    with voice_server.client() as client:
        page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "'unsafe-inline'" not in csp
    assert (
        page.headers["cache-control"] == "no-store" and "max-age" in page.headers["strict-transport-security"]
    )
    assert "http://" not in page.text and "https://" not in page.text  # no third-party script, font or beacon


def test_metrics_carry_numbers_and_closed_labels_only(voice_server: VoiceServer) -> None:
    with voice_server.client() as client:
        text = client.get("/metrics").text
    assert "voice_agent_calls_active" in text or "# HELP voice_agent_voice_to_voice_seconds" in text
    for line in text.splitlines():
        if line.startswith("voice_agent_") and "{" in line:
            labels = line[line.index("{") + 1 : line.index("}")]
            for pair in labels.split(","):
                key, _, value = pair.partition("=")
                allowed = {
                    "ingress": {"webrtc", "telephony", "sip"},
                    "stage": {"turn_detection", "stt", "dialogue", "tts"},
                    "outcome": {"written", "failed"},  # voice_agent_audit_checkpoints_total
                    "reason": {
                        "hangup",
                        "goodbye",
                        "timeout",
                        "escalated",
                        "transferred",
                        "shutdown",
                        "error",
                        *get_args(CallRefusal),  # voice_agent_calls_refused_total
                    },
                    "probe": {"healthz", "readyz"},
                    "carrier": {"twilio", "telnyx", "plivo", "exotel"},
                    "by": set(get_args(EndedBy)),  # voice_agent_turn_ends_total
                    "le": None,
                }
                assert key in allowed, line
                if (values := allowed[key]) is not None:
                    assert value.strip('"') in values, line


async def test_a_stream_that_is_not_the_named_carrier_is_refused(voice_server: VoiceServer) -> None:
    context: ssl.SSLContext = voice_server.ssl_context()
    async with websockets.connect(f"{voice_server.ws_url}/telephony/telnyx", ssl=context) as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(
            json.dumps(
                {"event": "start", "streamSid": "MZ1", "start": {"streamSid": "MZ1", "callSid": "CA1"}}
            )
        )
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
