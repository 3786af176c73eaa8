"""Carrier media streams: ``/telephony/{carrier}``, the WebSocket a BAA-covered SIP trunk points at.

pipecat recognises the carrier from its first messages and its serializers speak each protocol (8 kHz
μ-law for Twilio, Telnyx, Plivo and Exotel). The path names the carrier the clinic configured; a stream
whose handshake says otherwise is refused. Hanging up through the carrier's REST API needs its
credentials; without them the agent ends the media stream and the carrier's own call flow ends the call.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.exotel import ExotelFrameSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.telnyx import TelnyxFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from twilio.twiml.voice_response import Connect, VoiceResponse

from voice_agent.audit.events import CallRefusal
from voice_agent.ingress.calls import CallRegistry, CallsFull, refused
from voice_agent.ingress.source_limits import SourceLimits
from voice_agent.ingress.telephony.carrier_auth import (
    StreamRefused,
    caller_from_token,
    mint_stream_token,
    public_url,
    secret_matches,
    source_allowed,
    twilio_signed,
    valid_call_id,
)
from voice_agent.ingress.telephony.carrier_messages import GuardedSerializer
from voice_agent.ingress.telephony.spent_tokens import SpentTokens
from voice_agent.phone_numbers import to_e164
from voice_agent.pipeline.call import VoiceEngine, run_voice_call
from voice_agent.settings import Settings

log = logging.getLogger(__name__)

Carrier = Literal["twilio", "telnyx", "plivo", "exotel"]
CARRIERS: tuple[Carrier, ...] = ("twilio", "telnyx", "plivo", "exotel")
_TELEPHONY_RATE = 8_000
_POLICY_VIOLATION = 1008
_TRY_AGAIN_LATER = 1013
_TWILIO_PATH = "/telephony/twilio"


class UnsupportedStream(ValueError):
    """The handshake is not a media stream of the named carrier."""


def serializer(
    carrier: str, detected: str, call: dict[str, str | None], settings: Settings
) -> FrameSerializer:
    """The named carrier's serializer, behind the shape check every message passes first."""
    if carrier not in CARRIERS or detected != carrier:
        raise UnsupportedStream(carrier)
    return GuardedSerializer(_carrier_serializer(carrier, call, settings), carrier)


def _carrier_serializer(carrier: str, call: dict[str, str | None], settings: Settings) -> FrameSerializer:
    stream, call_id = call.get("stream_id") or "", call.get("call_id")
    if carrier == "twilio":
        token = settings.twilio_auth_token
        can_hang_up = bool(settings.twilio_account_sid and token and call_id)
        return TwilioFrameSerializer(
            stream_sid=stream,
            call_sid=call_id,
            account_sid=settings.twilio_account_sid,
            auth_token=token.get_secret_value() if token else None,
            params=TwilioFrameSerializer.InputParams(auto_hang_up=can_hang_up),
        )
    if carrier == "telnyx":
        return TelnyxFrameSerializer(
            stream_id=stream,
            outbound_encoding=call.get("outbound_encoding") or "PCMU",
            inbound_encoding="PCMU",
            call_control_id=call_id,
            params=TelnyxFrameSerializer.InputParams(auto_hang_up=False),
        )
    if carrier == "plivo":
        return PlivoFrameSerializer(
            stream_id=stream, call_id=call_id, params=PlivoFrameSerializer.InputParams(auto_hang_up=False)
        )
    return ExotelFrameSerializer(stream_sid=stream, call_sid=call_id)


#: How long a stream token from a signed webhook stays good: the carrier connects within a second or two.
_TOKEN_TTL_SECONDS = 60.0
#: A spent call stays on record past its token's expiry (and a little clock skew between workers).
_SPENT_KEEP = timedelta(seconds=_TOKEN_TTL_SECONDS * 3)


def telephony_router(engine: VoiceEngine, calls: CallRegistry, limits: SourceLimits) -> APIRouter:
    router = APIRouter()
    settings = engine.agent.settings
    auditor = engine.agent.auditor
    spent = SpentTokens(engine.agent.trail.engine)
    spent.create()  # at start-up, before the first request
    twilio_token = settings.twilio_auth_token.get_secret_value() if settings.twilio_auth_token else None
    if settings.unsigned_streams:
        log.warning(
            "DEVELOPMENT: /telephony accepts media streams no carrier signed; their caller numbers are "
            "ignored. Set VOICE_AGENT_TWILIO_AUTH_TOKEN or VOICE_AGENT_TELEPHONY_STREAM_SECRETS for a clinic."
        )

    async def refuse(reason: CallRefusal, *, record: bool = True) -> None:
        await refused(auditor, engine.agent.detector, "telephony", reason, record=record)

    @router.post("/telephony/twilio/voice")
    async def twilio_incoming(request: Request) -> Response:
        """Twilio's incoming-call webhook, signed: answered with TwiML that connects this call's stream
        and hands it a token carrying the attested ``From``."""
        if twilio_token is None:
            raise HTTPException(404)
        form = await request.form(max_files=0, max_fields=100)
        params = {key: value for key, value in form.multi_items() if isinstance(value, str)}
        signed_url = public_url(str(request.url), settings.telephony_public_url)
        if not twilio_signed(twilio_token, signed_url, params, request.headers.get("X-Twilio-Signature")):
            await refuse("signature")
            raise HTTPException(403)
        call_sid = params.get("CallSid")
        if call_sid is None or not valid_call_id("twilio", call_sid):
            await refuse("call-id")
            raise HTTPException(400)
        token = mint_stream_token(
            twilio_token, call_sid, to_e164(params.get("From")), now=time.time(), ttl=_TOKEN_TTL_SECONDS
        )
        base = urlsplit(settings.telephony_public_url or str(request.base_url))
        stream_url = urlunsplit(
            ("wss" if base.scheme == "https" else "ws", base.netloc, _TWILIO_PATH, "", "")
        )
        answer = VoiceResponse()
        connect = Connect()
        connect.stream(url=stream_url).parameter(name="token", value=token)
        answer.append(connect)
        return Response(str(answer), media_type="text/xml")

    async def vouched_for(websocket: WebSocket, carrier: str) -> bool | None:
        """Whether the carrier's credential vouches for this upgrade request: True, False (refused and
        audited), or None (no credential configured for this carrier)."""
        peer = websocket.client.host if websocket.client else None
        if not source_allowed(peer, settings.telephony_allowed_sources):
            await refuse("source")
            return False
        if carrier == "twilio" and twilio_token is not None:
            signed_url = public_url(str(websocket.url), settings.telephony_public_url)
            if not twilio_signed(twilio_token, signed_url, {}, websocket.headers.get("x-twilio-signature")):
                await refuse("signature")
                return False
            return True
        secret = settings.telephony_stream_secrets.get(carrier)  # type: ignore[call-overload]
        if secret is not None:
            if not secret_matches(secret.get_secret_value(), websocket.query_params.get("key")):
                await refuse("secret")
                return False
            return True
        return None

    @router.websocket("/telephony/{carrier}")
    async def media_stream(websocket: WebSocket, carrier: str) -> None:
        if carrier not in CARRIERS:
            await websocket.close(code=_POLICY_VIOLATION)
            return
        peer = websocket.client.host if websocket.client else None
        if not await limits.admit("stream", peer):
            await refuse("rate", record=await limits.first_refusal("stream", peer))
            await websocket.close(code=_POLICY_VIOLATION)
            return
        vouched = await vouched_for(websocket, carrier)
        if vouched is False or (vouched is None and not settings.unsigned_streams):
            if vouched is None:
                await refuse("unsigned")
            await websocket.close(code=_POLICY_VIOLATION)  # before accept: the client gets a 403
            return
        await websocket.accept()
        try:
            detected, data = await asyncio.wait_for(
                parse_telephony_websocket(websocket), settings.telephony_handshake_seconds
            )
            call = {k: (str(v) if v is not None else None) for k, v in dict(data).items() if k != "body"}
            frames = serializer(carrier, detected, call, settings)
        except (TimeoutError, UnsupportedStream, ValueError, KeyError):  # none in time, or not this carrier's
            await refuse("handshake")
            await websocket.close(code=_POLICY_VIOLATION)
            return
        except WebSocketDisconnect:
            return
        call_id = call.get("call_id")
        if call_id is not None and not valid_call_id(carrier, call_id):
            await refuse("call-id")  # it would go into the carrier's REST URL on hang-up
            await websocket.close(code=_POLICY_VIOLATION)
            return
        caller: str | None = None  # only what a carrier attests: never a number the client chose
        if carrier == "twilio" and twilio_token is not None:
            body = data.get("body") if isinstance(data.get("body"), dict) else {}
            try:
                caller = caller_from_token(twilio_token, body.get("token"), call_id, now=time.time())
            except StreamRefused as refused:
                await refuse("token-expired" if refused.reason == "token-expired" else "token")
                await websocket.close(code=_POLICY_VIOLATION)
                return
            # caller_from_token has matched call_id against the token's own
            if call_id is None or not await asyncio.to_thread(spent.spend, call_id, keep=_SPENT_KEEP):
                await refuse("token-replayed")  # this call's stream opened once already, somewhere
                await websocket.close(code=_POLICY_VIOLATION)
                return
        transport = FastAPIWebsocketTransport(
            websocket=websocket,
            params=FastAPIWebsocketParams(
                audio_in_enabled=True,
                audio_out_enabled=True,
                add_wav_header=False,
                serializer=frames,
            ),
        )
        try:
            task = calls.start(
                run_voice_call(
                    engine,
                    transport,
                    ingress="telephony",
                    caller_number=caller,
                    audio_out_sample_rate=_TELEPHONY_RATE,
                )
            )
        except CallsFull:
            await refuse("ceiling")
            await websocket.close(code=_TRY_AGAIN_LATER)
            return
        await task  # the WebSocket lives as long as this handler does

    return router
