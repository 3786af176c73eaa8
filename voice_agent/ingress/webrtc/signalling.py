"""Browser calls: pipecat's SmallWebRTC signalling (``POST``/``PATCH /api/offer``), as in its runner.

Media is DTLS-SRTP (aiortc); the signalling rides on the app's TLS. STUN comes from settings; TURN
credentials are minted per page load and per call, and expire (``turn_credentials.py``).
"""

from __future__ import annotations

import logging
import secrets
import time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pipecat.transports.base_transport import TransportParams
from pipecat.transports.smallwebrtc.connection import IceServer, SmallWebRTCConnection
from pipecat.transports.smallwebrtc.request_handler import (
    IceCandidate,
    SmallWebRTCPatchRequest,
    SmallWebRTCRequest,
    SmallWebRTCRequestHandler,
)
from pipecat.transports.smallwebrtc.transport import SmallWebRTCTransport
from pydantic import BaseModel, Field

from voice_agent.ingress.calls import CallRegistry, CallsFull, Draining, refused
from voice_agent.ingress.source_limits import Door, SourceLimits
from voice_agent.ingress.webrtc.turn_credentials import IceServerConfig, ice_config
from voice_agent.pipeline.call import VoiceEngine, run_voice_call

log = logging.getLogger(__name__)

#: WebRTC audio is Opus at 48 kHz; pipecat resamples the agent's voice once, on the way out.
_WEBRTC_OUT_RATE = 48_000
_MAX_SDP = 20_000


class Offer(BaseModel):
    sdp: str = Field(max_length=_MAX_SDP)
    type: str = Field(pattern=r"^(offer|answer)$")
    pc_id: str | None = Field(default=None, max_length=100)
    restart_pc: bool | None = None


class Candidate(BaseModel):
    candidate: str = Field(max_length=1000)
    sdp_mid: str | None = Field(default=None, max_length=50)
    sdp_mline_index: int | None = Field(default=None, ge=0, le=16)


class Patch(BaseModel):
    pc_id: str = Field(max_length=100)
    candidates: list[Candidate] = Field(max_length=50)


def webrtc_router(engine: VoiceEngine, calls: CallRegistry, limits: SourceLimits) -> APIRouter:
    router = APIRouter()
    settings = engine.agent.settings
    secret = settings.turn_shared_secret.get_secret_value() if settings.turn_shared_secret else None

    def fresh_ice() -> list[IceServerConfig]:
        """STUN as configured; TURN with a credential of its own, under a random label (the TURN
        server's logs link no two page loads), expiring after ``turn_credential_seconds``."""
        return ice_config(
            settings.stun_urls,
            settings.turn_urls,
            secret,
            label=secrets.token_hex(8),
            now=time.time(),
            ttl_seconds=settings.turn_credential_seconds,
        )

    def for_aiortc(servers: list[IceServerConfig]) -> list[IceServer]:
        return [IceServer(urls=s.urls, username=s.username, credential=s.credential) for s in servers]

    handler = SmallWebRTCRequestHandler(ice_servers=for_aiortc(fresh_ice()))

    async def over_limit(door: Door, http: Request) -> bool:
        source = http.client.host if http.client else None
        if await limits.admit(door, source):
            return False
        record = await limits.first_refusal(door, source)
        await refused(engine.agent.auditor, engine.agent.detector, "webrtc", "rate", record=record)
        return True

    @router.get("/api/ice")
    async def ice(http: Request) -> dict[str, Any]:
        """The page's RTCPeerConnection config: the STUN/TURN servers the agent uses, with a TURN
        credential minted for this page load."""
        if await over_limit("ice", http):
            raise HTTPException(429, "too many calls from this address; please try again shortly")
        return {"iceServers": [s.as_browser_dict() for s in fresh_ice()]}

    #: The connections whose call is running: only these may renegotiate without taking a new line.
    live: set[str] = set()

    @router.post("/api/offer")
    async def offer(body: Offer, http: Request) -> dict[str, str]:
        if await over_limit("offer", http):
            raise HTTPException(429, "too many calls from this address; please try again shortly")
        # A pc_id the agent did not hand out for a call still running is not a renegotiation: it is a
        # new call, counted against the ceiling like any other (and the client does not choose its id).
        renegotiation = body.pc_id is not None and body.pc_id in live
        request = SmallWebRTCRequest(
            sdp=body.sdp,
            type=body.type,
            pc_id=body.pc_id if renegotiation else None,
            restart_pc=body.restart_pc if renegotiation else None,
        )
        held = not renegotiation  # a new call holds a line until its pipeline starts
        if held:
            handler.update_ice_servers(for_aiortc(fresh_ice()))  # the agent's own, for this call
            try:
                calls.reserve()
            except CallsFull as full:
                await refused(engine.agent.auditor, engine.agent.detector, "webrtc", "ceiling")
                detail = "this line is closing" if isinstance(full, Draining) else "all lines are busy"
                raise HTTPException(503, f"{detail}; please try again shortly") from None

        async def connected(connection: SmallWebRTCConnection) -> None:
            nonlocal held
            transport = SmallWebRTCTransport(
                webrtc_connection=connection,
                params=TransportParams(audio_in_enabled=True, audio_out_enabled=True),
            )
            task = calls.start(
                run_voice_call(
                    engine,
                    transport,
                    ingress="webrtc",
                    source=http.client.host if http.client else None,  # the browser itself
                    audio_out_sample_rate=_WEBRTC_OUT_RATE,
                ),
                reserved=True,
            )
            held = False
            pc_id = connection.pc_id
            live.add(pc_id)
            task.add_done_callback(lambda _: live.discard(pc_id))

        try:
            answer = await handler.handle_web_request(request, connected)
        except HTTPException:
            raise
        except Exception as error:
            log.warning("a WebRTC offer was refused (%s)", type(error).__name__)
            raise HTTPException(400, "the offer could not be answered") from None
        finally:
            if held:
                calls.release()
        if answer is None:
            raise HTTPException(400, "the offer could not be answered")
        return answer

    @router.patch("/api/offer")
    async def candidates(body: Patch) -> dict[str, str]:
        patch = SmallWebRTCPatchRequest(
            pc_id=body.pc_id,
            candidates=[
                IceCandidate(
                    candidate=c.candidate, sdp_mid=c.sdp_mid or "", sdp_mline_index=c.sdp_mline_index or 0
                )
                for c in body.candidates
            ],
        )
        await handler.handle_patch_request(patch)
        return {"status": "ok"}

    router.on_shutdown.append(handler.close)
    return router
