"""Carrier media streams: ``/telephony/{carrier}``, the WebSocket a BAA-covered SIP trunk points at.

pipecat recognises the carrier from its first messages and its serializers speak each protocol (8 kHz
μ-law for Twilio, Telnyx, Plivo and Exotel). The path names the carrier the clinic configured; a stream
whose handshake says otherwise is refused. Hanging up through the carrier's REST API needs its
credentials; without them the agent ends the media stream and the carrier's own call flow ends the call.
"""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pipecat.runner.utils import parse_telephony_websocket
from pipecat.serializers.base_serializer import FrameSerializer
from pipecat.serializers.exotel import ExotelFrameSerializer
from pipecat.serializers.plivo import PlivoFrameSerializer
from pipecat.serializers.telnyx import TelnyxFrameSerializer
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport

from voice_agent.dialogue.handoff import to_e164
from voice_agent.ingress.calls import CallRegistry, CallsFull
from voice_agent.pipeline.call import VoiceEngine, run_voice_call
from voice_agent.settings import Settings

log = logging.getLogger(__name__)

Carrier = Literal["twilio", "telnyx", "plivo", "exotel"]
CARRIERS: tuple[Carrier, ...] = ("twilio", "telnyx", "plivo", "exotel")
_TELEPHONY_RATE = 8_000
_POLICY_VIOLATION = 1008
_TRY_AGAIN_LATER = 1013


class UnsupportedStream(ValueError):
    """The handshake is not a media stream of the named carrier."""


def serializer(
    carrier: str, detected: str, call: dict[str, str | None], settings: Settings
) -> FrameSerializer:
    if carrier not in CARRIERS or detected != carrier:
        raise UnsupportedStream(carrier)
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


def telephony_router(engine: VoiceEngine, calls: CallRegistry) -> APIRouter:
    router = APIRouter()
    settings = engine.agent.settings

    @router.websocket("/telephony/{carrier}")
    async def media_stream(websocket: WebSocket, carrier: str) -> None:
        await websocket.accept()
        try:
            detected, data = await parse_telephony_websocket(websocket)
            call = {k: (str(v) if v is not None else None) for k, v in dict(data).items() if k != "body"}
            frames = serializer(carrier, detected, call, settings)
        except (UnsupportedStream, ValueError, KeyError):
            log.warning(
                "a media stream was refused: not a %s handshake", carrier if carrier in CARRIERS else "known"
            )
            await websocket.close(code=_POLICY_VIOLATION)
            return
        except WebSocketDisconnect:
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
        caller = to_e164(data.get("from"))
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
            await websocket.close(code=_TRY_AGAIN_LATER)
            return
        await task  # the WebSocket lives as long as this handler does

    return router
