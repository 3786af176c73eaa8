"""A fake carrier: speaks Twilio's media-stream protocol to ``/telephony/twilio`` the way Twilio does.

First the signed incoming-call webhook (``X-Twilio-Signature`` over the URL and form, the caller's
number as ``From``), whose TwiML names the stream and its token; then the stream's handshake, signed the
same way, ``connected``, ``start`` (the token as a custom parameter, as TwiML's ``<Parameter>`` sends
it), then ``media`` every 20 ms in real time, 160 bytes of 8 kHz μ-law each, for the whole
call: silence when the caller is quiet, speech when they talk, keypad ``dtmf`` events in between. What
the agent sends back is kept with its arrival time, so tests and the latency benchmark can time it and
transcribe it. (Written by hand: no library plays the carrier side of this protocol.)
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import ssl
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from xml.etree import ElementTree

import httpx
import numpy as np
import websockets
from pipecat.audio.utils import create_stream_resampler, pcm_to_ulaw, ulaw_to_pcm
from twilio.request_validator import RequestValidator

from harness.caller_audio import SAMPLE_RATE, TELEPHONE_RATE, ulaw_decode

#: The Twilio auth token the test servers are configured with (a test value, not a real account's).
TWILIO_TEST_TOKEN = "test-auth-token-0123456789abcdef"
FRAME_SECONDS = 0.02
_FRAME_BYTES = 160  # 20 ms of 8 kHz μ-law
_ULAW_SILENCE = b"\xff" * _FRAME_BYTES
#: Silence encoded after each line (see ``frames_of``).
_FLUSH = bytes(int(0.25 * SAMPLE_RATE) * 2)


@dataclass
class AgentAudio:
    """One chunk of the agent's voice as the carrier received it."""

    at: float  # time.monotonic() on arrival
    ulaw: bytes


@dataclass
class TwilioCaller:
    url: str
    ssl_context: ssl.SSLContext | None = None
    caller_number: str | None = None
    #: Signs as Twilio does under this auth token; None: an unsigned client, as an attacker would be.
    auth_token: str | None = TWILIO_TEST_TOKEN
    #: A number the client writes into ``customParameters`` itself (the agent must never believe it).
    claimed_number: str | None = None
    received: list[AgentAudio] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    closed_at: float | None = None
    _outgoing: asyncio.Queue[bytes] = field(default_factory=asyncio.Queue)
    _ws: Any = None
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stream_sid: str = field(default_factory=lambda: "MZ" + uuid.uuid4().hex)
    speech_ended: float | None = None
    #: When the first frame of the latest ``say`` left (its leading silence included).
    speech_started: float | None = None
    _first_of_line: bool = False
    #: Times the paced sender fell more than a frame behind its clock and started it afresh (the caller's
    #: own side lagged: a busy machine, not the agent). A benchmark reports it beside its numbers.
    lag_resets: int = 0

    async def incoming_call(self, call_sid: str) -> tuple[str, str]:
        """Twilio's signed webhook for a new call: the stream URL and token its TwiML answer gives."""
        assert self.auth_token is not None
        webhook = self.url.replace("wss://", "https://", 1) + "/voice"
        form = {
            "CallSid": call_sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.caller_number or "anonymous",
            "To": "+15550100000",
            "CallStatus": "ringing",
            "Direction": "inbound",
        }
        signature = RequestValidator(self.auth_token).compute_signature(webhook, form)
        async with httpx.AsyncClient(verify=self.ssl_context or True, trust_env=False) as http:
            answer = await http.post(webhook, data=form, headers={"X-Twilio-Signature": signature})
        answer.raise_for_status()
        stream = ElementTree.fromstring(answer.text).find("./Connect/Stream")
        assert stream is not None, answer.text
        token = stream.find("./Parameter[@name='token']")
        assert token is not None, answer.text
        return str(stream.get("url")), str(token.get("value"))

    async def __aenter__(self) -> TwilioCaller:
        call_sid = "CA" + uuid.uuid4().hex
        params: dict[str, str] = {}
        headers: dict[str, str] = {}
        url = self.url
        if self.auth_token is not None:
            url, params["token"] = await self.incoming_call(call_sid)
            headers["X-Twilio-Signature"] = RequestValidator(self.auth_token).compute_signature(url, {})
        if self.claimed_number is not None:
            params["from_number"] = self.claimed_number
        self._ws = await websockets.connect(
            url, ssl=self.ssl_context, max_size=2**20, additional_headers=headers
        )
        await self._ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await self._ws.send(
            json.dumps(
                {
                    "event": "start",
                    "sequenceNumber": "1",
                    "streamSid": self._stream_sid,
                    "start": {
                        "streamSid": self._stream_sid,
                        "accountSid": "AC" + "0" * 32,
                        "callSid": call_sid,
                        "tracks": ["inbound"],
                        "customParameters": params,
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    },
                }
            )
        )
        self._tasks = [asyncio.create_task(self._send_paced()), asyncio.create_task(self._receive())]
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.hang_up()

    async def hang_up(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(BaseException):
                await task
        self._tasks = []
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.send(json.dumps({"event": "stop", "streamSid": self._stream_sid}))
            with contextlib.suppress(Exception):
                await self._ws.close()
            self._ws = None

    # ------------------------------------------------------------------ the caller's side

    async def say(self, pcm16k: bytes) -> float:
        """Queue speech (16 kHz PCM); returns when its last frame has been sent, in real time. The
        returned monotonic time is the end of the caller's speech, what voice-to-voice is timed from."""
        frames = await frames_of(pcm16k)
        self._first_of_line = True
        for chunk in frames:
            await self._outgoing.put(chunk)
        await self._outgoing.join()
        # The line as sent ends in silence: the caller stopped speaking that long before it was sent.
        sent = ulaw_decode(b"".join(frames))
        self.speech_ended = time.monotonic() - trailing_silence(sent, rate=TELEPHONE_RATE)
        return self.speech_ended

    async def press(self, keys: str, gap: float = 0.25) -> None:
        for key in keys:
            await self._ws.send(
                json.dumps({"event": "dtmf", "streamSid": self._stream_sid, "dtmf": {"digit": key}})
            )
            await asyncio.sleep(gap)

    async def send_raw(self, message: str | bytes) -> None:
        """Whatever a broken (or hostile) media server might put on the stream, as it is."""
        await self._ws.send(message)

    async def _send_paced(self) -> None:
        """One frame every 20 ms against a fixed clock, as a carrier does (no drift, no bursts)."""
        start, sent = time.monotonic(), 0
        while True:
            try:
                chunk = self._outgoing.get_nowait()
                taken = True
                if self._first_of_line:
                    self._first_of_line, self.speech_started = False, time.monotonic()
            except asyncio.QueueEmpty:
                chunk, taken = _ULAW_SILENCE, False
            payload = base64.b64encode(chunk).decode()
            await self._ws.send(
                json.dumps({"event": "media", "streamSid": self._stream_sid, "media": {"payload": payload}})
            )
            if taken:
                self._outgoing.task_done()
            sent += 1
            lag = time.monotonic() - (start + sent * FRAME_SECONDS)
            if lag > FRAME_SECONDS:  # we were held up: a carrier drops the past, it never bursts it
                start, sent = time.monotonic(), 0
                self.lag_resets += 1
            await asyncio.sleep(max(0.0, start + sent * FRAME_SECONDS - time.monotonic()))

    async def _receive(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                event = message.get("event")
                if event == "media":
                    self.received.append(
                        AgentAudio(time.monotonic(), base64.b64decode(message["media"]["payload"]))
                    )
                elif event == "clear":
                    self.clears.append(time.monotonic())
        except websockets.ConnectionClosed:
            pass
        finally:
            self.closed_at = time.monotonic()

    # ------------------------------------------------------------------ the agent's side

    def played(self) -> list[tuple[float, float, bool]]:
        """(start, end, loud) of each 20 ms the caller's phone played, as a carrier plays: in arrival
        order, never early, and a ``clear`` drops whatever was buffered and not yet played."""
        out: list[tuple[float, float, bool]] = []
        cursor = 0.0
        clears = sorted(self.clears)
        for chunk in self.received:
            start = max(chunk.at, cursor)
            if any(chunk.at <= c < start for c in clears):
                continue  # buffered when the carrier was told to clear
            cursor = start + len(chunk.ulaw) / 8000
            out.append((start, cursor, is_loud(chunk.ulaw)))
        return out

    def agent_stopped_after(self, moment: float, *, gap: float = 0.2) -> float | None:
        """When the agent's voice, playing at ``moment``, went quiet (the first ``gap`` of silence)."""
        last_end: float | None = None
        for start, end, loud in self.played():
            if not loud or end <= moment:
                continue
            if last_end is not None and start - last_end >= gap:
                break
            last_end = end
        return last_end

    def first_audio_after(self, moment: float) -> float | None:
        """Arrival of the first non-silent agent audio after ``moment``."""
        for chunk in self.received:
            if chunk.at > moment and is_loud(chunk.ulaw):
                return chunk.at
        return None

    async def agent_turn(self, *, after: float, quiet: float = 1.2, timeout: float = 30.0) -> bytes:
        """Wait for the agent's reply that starts after ``after`` and ends with ``quiet`` seconds of
        nothing (or silence) from it; returns it as 16 kHz PCM."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            chunks = [c for c in self.received if c.at > after]
            loud = [c for c in chunks if is_loud(c.ulaw)]
            if loud and time.monotonic() - loud[-1].at >= quiet:
                # Let the receiver drain what arrived while this loop was busy before calling it quiet.
                count = len(self.received)
                await asyncio.sleep(0.2)
                if len(self.received) != count:
                    continue
                # (padded with silence: Whisper drops a last word that ends the audio abruptly)
                ulaw = b"".join(c.ulaw for c in chunks if c.at <= loud[-1].at) + _ULAW_SILENCE * 25
                pcm: bytes = await ulaw_to_pcm(ulaw, 8_000, 16_000, create_stream_resampler())
                return pcm
            if self.closed_at is not None and not loud:
                break
            await asyncio.sleep(0.05)
        raise TimeoutError("the agent did not answer")


async def frames_of(pcm16k: bytes) -> list[bytes]:
    """A caller's line (16 kHz PCM) as the carrier sends it: 8 kHz μ-law (pipecat's ``pcm_to_ulaw``) in
    20 ms frames. A fresh stream resampler holds back the end of what it is given (up to 0.1 s), so the
    line goes in with a quarter second of silence after it: else the end of its last word is lost."""
    ulaw = await pcm_to_ulaw(pcm16k + _FLUSH, 16_000, TELEPHONE_RATE, create_stream_resampler())
    return [
        ulaw[i : i + _FRAME_BYTES].ljust(_FRAME_BYTES, b"\xff") for i in range(0, len(ulaw), _FRAME_BYTES)
    ]


async def as_carried(pcm16k: bytes, *, after_silence: float = 0.0) -> bytes:
    """What the agent's pipeline receives when a caller ``say``s ``pcm16k`` (16 kHz PCM in, 16 kHz PCM
    out) ``after_silence`` seconds into a quiet line: the line's ``frames_of`` between silent frames,
    decoded frame by frame as pipecat's Twilio serializer does (one stream resampler for the call, 8 kHz
    μ-law to 16 kHz; the silence after the line lets all of it out, as on a call)."""
    frames = [
        *[_ULAW_SILENCE] * round(after_silence / FRAME_SECONDS),
        *await frames_of(pcm16k),
        *[_ULAW_SILENCE] * 50,
    ]
    resampler = create_stream_resampler()
    return b"".join([await ulaw_to_pcm(frame, TELEPHONE_RATE, 16_000, resampler) for frame in frames])


def leading_silence(pcm16k: bytes, *, threshold: int = 500) -> float:
    """Seconds of near-silence before the first loud 10 ms window of 16 kHz PCM."""
    samples = np.abs(np.frombuffer(pcm16k, dtype=np.int16).astype(np.int32))
    window, start = 160, 0
    while start + window <= len(samples) and samples[start : start + window].max() < threshold:
        start += window
    return start / 16_000


def trailing_silence(pcm: bytes, *, threshold: int = 500, rate: int = 16_000) -> float:
    """Seconds of near-silence at the end of PCM (peaks under ``threshold``, 10 ms windows)."""
    samples = np.abs(np.frombuffer(pcm, dtype=np.int16).astype(np.int32))
    window = rate // 100
    end = len(samples)
    while end >= window and samples[end - window : end].max() < threshold:
        end -= window
    return (len(samples) - end) / rate


def is_loud(ulaw: bytes) -> bool:
    # μ-law bytes near 0xFF/0x7F are near zero amplitude; speech has many bytes far from them.
    return sum(1 for b in ulaw if (b & 0x7F) < 0x70) > len(ulaw) // 8


def dev_ssl_context(ca_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context
