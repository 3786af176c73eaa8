"""The carrier stream and WebRTC doors of a real ``voice-agent serve`` (TLS, the mTLS sandbox, the real
models), tried as an attacker would: unsigned or forged streams, a token for another call, a socket that
never speaks, a flood of WebRTC offers with invented ``pc_id``s."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
import websockets
from aioice.stun import TransactionFailed
from aioice.turn import create_turn_endpoint
from aiortc import RTCPeerConnection
from twilio.request_validator import RequestValidator
from websockets.exceptions import ConnectionClosed, InvalidStatus

from harness.real_parts import report_absent
from harness.sandbox import Sandbox
from harness.twilio_caller import TWILIO_TEST_TOKEN, TwilioCaller
from harness.voice_server import VoiceServer, start_voice_server, stop_voice_server
from tests.security.turn import MISSING, SECRET, TurnServer, running_turnserver
from voice_agent.audit import AuditTrail, Keyring
from voice_agent.ingress.webrtc.turn_credentials import turn_credential

CEILING = 2
CALLS_ACTIVE = "voice_agent_worker_calls_active"
CALL_LIMIT = 12  # seconds; the fixture's silence prompts would take 3 x 45 s to end a quiet call


#: Per source and minute here: above what the tests from 127.0.0.1 send, so only the rate tests (from
#: 127.0.0.2, a source of their own) meet them.
OFFERS_PER_MINUTE = 40
STREAMS_PER_MINUTE = 30
STRANGER = "127.0.0.2"


@pytest.fixture(scope="module")
def turn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TurnServer | None]:
    if MISSING:
        yield None  # the TURN test says so (and fails under CI); the rest of the module still runs
        return
    with running_turnserver(tmp_path_factory.mktemp("turn")) as relay:
        yield relay


@pytest.fixture(scope="module")
def server(
    sandbox: Sandbox, tmp_path_factory: pytest.TempPathFactory, turn: TurnServer | None
) -> Iterator[VoiceServer]:
    relay = {"VOICE_AGENT_TURN_URLS": json.dumps([turn.url]), "VOICE_AGENT_TURN_SHARED_SECRET": SECRET}
    running = start_voice_server(
        sandbox,
        tmp_path_factory.mktemp("surface") / "product",
        **(relay if turn else {}),
        VOICE_AGENT_OFFERS_PER_SOURCE_MINUTE=str(OFFERS_PER_MINUTE),
        VOICE_AGENT_STREAMS_PER_SOURCE_MINUTE=str(STREAMS_PER_MINUTE),
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


def refusals(server: VoiceServer, reason: str, ingress: str = "telephony") -> float:
    try:
        return server.metric("voice_agent_calls_refused_total", ingress=ingress, reason=reason)
    except AssertionError:  # no such refusal yet
        return 0.0


def audited_refusals(server: VoiceServer, reason: str) -> list[str]:
    """The ingress of each ``call.refused`` event with this reason in the server's audit trail."""
    keyring = Keyring.from_file(server.product / "audit.key")
    with AuditTrail.open(server.env["VOICE_AGENT_AUDIT_DATABASE_URL"], keyring) as trail:
        now = datetime.now(UTC)
        return [
            row["event"]["ingress"]
            for row in trail.export(now - timedelta(hours=1), now + timedelta(hours=1))
            if row["event"]["action"] == "call.refused" and row["event"].get("refusal") == reason
        ]


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


async def test_a_signed_calls_stream_opens_once_and_a_replay_is_refused(server: VoiceServer) -> None:
    """Someone who captured a signed handshake and its token (a proxy's log, a packet capture behind TLS
    termination) cannot open a second stream for the call: the token's call is spent in the shared
    database on first use, whichever worker the replay reaches."""
    genuine = TwilioCaller(
        f"{server.ws_url}/telephony/twilio", server.ssl_context(), caller_number="+15550100198"
    )
    call_sid = "CA" + uuid.uuid4().hex
    url, token = await genuine.incoming_call(call_sid)
    signature = RequestValidator(TWILIO_TEST_TOKEN).compute_signature(url, {})
    start = {"streamSid": "MZ" + uuid.uuid4().hex, "callSid": call_sid, "customParameters": {"token": token}}
    handshake = [
        json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        json.dumps({"event": "start", "streamSid": start["streamSid"], "start": start}),
    ]
    headers = {"X-Twilio-Signature": signature}
    async with websockets.connect(url, ssl=server.ssl_context(), additional_headers=headers) as ws:
        for message in handshake:
            await ws.send(message)
        first = json.loads(await asyncio.wait_for(ws.recv(), 30))  # the agent answers: the greeting
        assert first["event"] in ("media", "mark", "clear"), first
    before = refusals(server, "token-replayed")
    async with websockets.connect(url, ssl=server.ssl_context(), additional_headers=headers) as replay:
        for message in handshake:
            await replay.send(message)
        with pytest.raises(ConnectionClosed) as closed:
            while True:  # nothing but the close: no greeting, no media
                assert json.loads(await asyncio.wait_for(replay.recv(), 10))["event"] not in ("media",)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
    assert refusals(server, "token-replayed") == before + 1


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
    assert answered <= CEILING and answered + refused == 20
    assert await asyncio.to_thread(server.metric, CALLS_ACTIVE) <= CEILING
    # and the offers whose peers never connect stop holding lines
    await lines_free(server)


async def lines_free(server: VoiceServer) -> None:
    """Every line is free again (an offer whose peer never connects holds one for call_connect_seconds)."""
    for _ in range(60):
        if await asyncio.to_thread(server.metric, CALLS_ACTIVE) == 0:
            break
        await asyncio.sleep(0.5)
    assert await asyncio.to_thread(server.metric, CALLS_ACTIVE) == 0


def test_public_health_says_nothing_about_calls_or_workers(server: VoiceServer) -> None:
    """What a stranger reads off /healthz and /readyz is whether to send traffic; the worker's name, its
    calls and its ceiling are on /metrics (blocked at the front) for Prometheus."""
    with server.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        ready = http.get("/readyz")
        assert ready.status_code == 200 and ready.json() == {"ready": True}
        assert server.metric("voice_agent_worker_call_limit") == CEILING
        assert server.metric("voice_agent_worker_fhir_up") == 1


async def test_turn_credentials_are_minted_per_page_and_expire(
    server: VoiceServer, turn: TurnServer | None
) -> None:
    """The page gets a TURN credential of its own that the real relay (coturn, use-auth-secret) accepts,
    that expires after turn_credential_seconds, and whose expiry a browser cannot extend."""
    if turn is None:
        report_absent("turnserver")
    with server.client() as http:
        first, second = (http.get("/api/ice").json()["iceServers"] for _ in range(2))
    assert [s["urls"] for s in first] == [turn.url]
    (one,), (two,) = first, second
    assert one["username"] != two["username"] and one["credential"] != two["credential"]
    expiry, _, label = one["username"].partition(":")
    assert abs(int(expiry) - (time.time() + 600)) < 30 and label  # the default lifetime, 10 minutes
    assert TWILIO_TEST_TOKEN not in json.dumps(first) and SECRET not in json.dumps(first)

    async def allocate(username: str, password: str) -> bool:
        try:
            relay, _ = await asyncio.wait_for(
                create_turn_endpoint(asyncio.DatagramProtocol, ("127.0.0.1", turn.port), username, password),
                10,
            )
        except TransactionFailed:
            return False
        relay.close()
        return True

    assert await allocate(one["username"], one["credential"])  # the relay takes what the agent minted
    extended = f"{int(expiry) + 86_400}:{label}"
    assert not await allocate(extended, one["credential"])  # a day more is a different HMAC
    stale, password = turn_credential(SECRET, label=label, now=time.time() - 3600, ttl_seconds=600)
    assert not await allocate(stale, password)  # one minted an hour ago has expired


async def test_a_source_over_its_rate_is_refused_at_every_door_and_audited_once(
    server: VoiceServer,
) -> None:
    """From one address, more page loads, offers and stream upgrades a minute than the limits are
    refused (429 / 403 before accept); a flood is one audit event per door, and every refusal counts."""
    before = {ingress: refusals(server, "rate", ingress) for ingress in ("webrtc", "telephony")}
    audited = audited_refusals(server, "rate")
    stranger = httpx.AsyncHTTPTransport(local_address=STRANGER, verify=server.ssl_context())
    async with httpx.AsyncClient(base_url=server.base_url, transport=stranger, timeout=30) as http:
        pages = [(await http.get("/api/ice")).status_code for _ in range(OFFERS_PER_MINUTE + 3)]
        offers = [
            (await http.post("/api/offer", json={"sdp": "v=0", "type": "offer"})).status_code
            for _ in range(OFFERS_PER_MINUTE + 3)
        ]
    assert pages == [200] * OFFERS_PER_MINUTE + [429] * 3
    assert 429 not in offers[:OFFERS_PER_MINUTE] and offers[OFFERS_PER_MINUTE:] == [429] * 3
    streams = []
    for _ in range(STREAMS_PER_MINUTE + 3):
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(
                f"{server.ws_url}/telephony/plivo", ssl=server.ssl_context(), local_addr=(STRANGER, 0)
            ):
                pass
        streams.append(refused.value.response.status_code)
    assert streams == [403] * (STREAMS_PER_MINUTE + 3)  # unsigned, then over the rate: no upgrade either way
    assert refusals(server, "rate", "webrtc") == before["webrtc"] + 6
    assert refusals(server, "rate", "telephony") == before["telephony"] + 3
    assert sorted(audited_refusals(server, "rate")) == sorted([*audited, "webrtc", "webrtc", "telephony"])
    with server.client() as http:  # and the clinic's other callers are not touched by it
        assert http.get("/api/ice").status_code == 200
    await lines_free(server)  # the offers that were admitted held lines until their peers failed to come


async def test_a_call_that_goes_on_and_on_is_ended_at_its_time_limit(server: VoiceServer) -> None:
    async with TwilioCaller(f"{server.ws_url}/telephony/twilio", server.ssl_context()) as call:
        started = asyncio.get_running_loop().time()
        while call.closed_at is None and asyncio.get_running_loop().time() - started < 60:
            await asyncio.sleep(0.5)
        assert call.closed_at is not None  # the agent hung up, long before silence would have
        assert call.received  # it spoke (the greeting, then the goodbye) before it did
