"""The carrier stream and WebRTC doors of a real ``voice-agent serve`` (TLS, the mTLS sandbox, the real
models), tried as an attacker would: unsigned or forged streams, a token for another call, a socket that
never speaks, a flood of WebRTC offers with invented ``pc_id``s."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
import websockets
from aiortc import RTCPeerConnection
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.conftest import Sandbox
from tests.voice.conftest import VoiceServer, start_voice_server, stop_voice_server
from tests.voice.twilio_caller import TWILIO_TEST_TOKEN, TwilioCaller

CEILING = 2
CALL_LIMIT = 12  # seconds; the fixture's silence prompts would take 3 x 45 s to end a quiet call


@pytest.fixture(scope="module")
def server(sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VoiceServer]:
    running = start_voice_server(
        sandbox,
        tmp_path_factory.mktemp("surface") / "product",
        VOICE_AGENT_MAX_CONCURRENT_CALLS=str(CEILING),
        VOICE_AGENT_TELEPHONY_HANDSHAKE_SECONDS="1",
        VOICE_AGENT_TELEPHONY_ACCEPT_UNSIGNED="false",  # the clinic profile, on the dev sandbox
        VOICE_AGENT_CALL_MAX_SECONDS=str(CALL_LIMIT),
        VOICE_AGENT_CALL_CONNECT_SECONDS="3",
        VOICE_AGENT_TELEPHONY_STREAM_SECRETS=json.dumps({"telnyx": "telnyx-stream-secret-for-tests"}),
    )
    try:
        yield running
    finally:
        stop_voice_server(running)


def refusals(server: VoiceServer, reason: str) -> float:
    with server.client() as client:
        text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith("voice_agent_calls_refused_total{") and f'reason="{reason}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_an_unsigned_twilio_stream_is_refused_before_it_is_accepted(server: VoiceServer) -> None:
    before = refusals(server, "signature")
    with pytest.raises(InvalidStatus) as refused:
        async with TwilioCaller(f"{server.ws_url}/telephony/twilio", server.ssl_context(), auth_token=None):
            pass
    assert refused.value.response.status_code == 403  # the upgrade itself: no media was ever read
    assert refusals(server, "signature") == before + 1


async def test_a_webhook_signed_with_another_token_gets_no_stream(server: VoiceServer) -> None:
    caller = TwilioCaller(
        f"{server.ws_url}/telephony/twilio", server.ssl_context(), auth_token="not-the-token"
    )
    with pytest.raises(httpx.HTTPStatusError) as refused:
        await caller.incoming_call("CA" + uuid.uuid4().hex)
    assert refused.value.response.status_code == 403


async def test_a_token_opens_only_the_call_it_was_issued_for(server: VoiceServer) -> None:
    genuine = TwilioCaller(
        f"{server.ws_url}/telephony/twilio", server.ssl_context(), caller_number="+15550100199"
    )
    url, token = await genuine.incoming_call("CA" + uuid.uuid4().hex)
    signature = RequestValidator(TWILIO_TEST_TOKEN).compute_signature(url, {})
    before = refusals(server, "token")
    async with websockets.connect(
        url, ssl=server.ssl_context(), additional_headers={"X-Twilio-Signature": signature}
    ) as ws:
        other_call = "CA" + uuid.uuid4().hex
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {
            "streamSid": "MZ" + uuid.uuid4().hex,
            "callSid": other_call,
            "customParameters": {"token": token},
        }
        await ws.send(json.dumps({"event": "start", "streamSid": start["streamSid"], "start": start}))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert refusals(server, "token") == before + 1


async def test_a_stream_secret_is_required_where_the_carrier_signs_nothing(server: VoiceServer) -> None:
    with pytest.raises(InvalidStatus) as refused:
        async with websockets.connect(
            f"{server.ws_url}/telephony/telnyx?key=guess", ssl=server.ssl_context()
        ):
            pass
    assert refused.value.response.status_code == 403
    before = refusals(server, "unsigned")
    with pytest.raises(InvalidStatus):  # a carrier with no credential configured takes no streams at all
        async with websockets.connect(f"{server.ws_url}/telephony/plivo", ssl=server.ssl_context()):
            pass
    assert refusals(server, "unsigned") == before + 1


async def test_a_socket_that_never_sends_its_handshake_is_closed(server: VoiceServer) -> None:
    async with websockets.connect(
        f"{server.ws_url}/telephony/telnyx?key=telnyx-stream-secret-for-tests", ssl=server.ssl_context()
    ) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)  # the handshake timeout is 1 s here
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def offer_sdp() -> str:
    peer = RTCPeerConnection()
    peer.addTransceiver("audio", direction="sendrecv")
    peer.addTransceiver("video", direction="sendrecv")
    await peer.setLocalDescription(await peer.createOffer())
    sdp = peer.localDescription.sdp
    await peer.close()
    return sdp


async def test_invented_pc_ids_never_take_the_worker_past_its_ceiling(server: VoiceServer) -> None:
    sdp = await offer_sdp()
    answered = refused = 0
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context(), timeout=30) as http:
        for n in range(20):
            reply = await http.post(
                "/api/offer", json={"sdp": sdp, "type": "offer", "pc_id": f"SmallWebRTCConnection#{n}"}
            )
            answered += reply.status_code == 200
            refused += reply.status_code == 503
        health = (await http.get("/healthz")).json()
    assert answered <= CEILING and answered + refused == 20
    assert health["calls"] <= CEILING
    # and the offers whose peers never connect stop holding lines
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context(), timeout=30) as http:
        for _ in range(60):
            if (await http.get("/healthz")).json()["calls"] == 0:
                break
            await asyncio.sleep(0.5)
        assert (await http.get("/healthz")).json()["calls"] == 0


async def test_a_call_that_goes_on_and_on_is_ended_at_its_time_limit(server: VoiceServer) -> None:
    async with TwilioCaller(f"{server.ws_url}/telephony/twilio", server.ssl_context()) as call:
        started = asyncio.get_running_loop().time()
        while call.closed_at is None and asyncio.get_running_loop().time() - started < 60:
            await asyncio.sleep(0.5)
        assert call.closed_at is not None  # the agent hung up, long before silence would have
        assert call.received  # it spoke (the greeting, then the goodbye) before it did
