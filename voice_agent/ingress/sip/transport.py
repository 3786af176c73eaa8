"""A pipecat transport over one baresip call: the caller's audio in, the agent's audio out, keypad digits,
and the blind transfer (SIP REFER) to the front desk.

baresip owns the clocks. Its receive side fills a buffer from RTP at the network's pace, so the input
drains whatever is there on a fixed 20 ms tick anchored to one start time (no sleep-accumulated drift,
and a late tick simply reads more). Its transmit side sends one packet per ptime from a buffer, sending
silence when it runs dry, so the output writes only while that buffer holds less than a short lead:
playback then runs at the network's clock for a whole call, however long, and an interruption has
little to discard (``flush_tx``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

# Pure-Python names (the native stack loads on first use); this module is imported only when SIP is on.
from baresip import AudioNotActive, AudioRestarted, BaresipError, Event
from pipecat.audio.dtmf.types import KeypadEntry
from pipecat.audio.utils import create_stream_resampler
from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    Frame,
    InputAudioRawFrame,
    InputDTMFFrame,
    InterruptionFrame,
    OutputAudioRawFrame,
    StartFrame,
)
from pipecat.processors.frame_processor import FrameDirection
from pipecat.transports.base_input import BaseInputTransport
from pipecat.transports.base_output import BaseOutputTransport
from pipecat.transports.base_transport import BaseTransport, TransportParams

from voice_agent.pipeline.frames import TransferCallFrame, TransferOutcomeFrame

if TYPE_CHECKING:
    from baresip import AudioInfo, AudioStats, Call, DigitEvent, StackEvent

log = logging.getLogger(__name__)

#: baresip's packet time for G.711, and the input's read tick.
_TICK_SECONDS = 0.02
#: How far ahead of the wire the output keeps baresip's transmit buffer (60 ms: three packets).
_LEAD_SECONDS = 0.06
#: After the last byte leaves the buffer, the last packet is still on its way: wait this long before
#: hanging up or transferring, so the caller hears the final word.
_TAIL_SECONDS = 0.25
#: How often (in ticks: 5 s) the call's audio counters are sampled for the end-of-call report.
_STATS_TICKS = 250
#: A transfer the front desk does not accept (nor refuse) within this is treated as failed.
TRANSFER_TIMEOUT_SECONDS = 30.0


class SipCall:
    """The transport's handle on the baresip call: its events, turned into what the pipeline needs."""

    def __init__(self, call: Call) -> None:
        self.call = call
        self.closed = asyncio.Event()
        self.digits: asyncio.Queue[str] = asyncio.Queue()
        self._stats: AudioStats | None = None
        self._heard_seconds = 0.0
        call.on(self._on_event)
        call.on_dtmf(self._on_digit)

    def _on_event(self, event: StackEvent) -> None:
        if event.event is Event.CALL_CLOSED:
            self.closed.set()

    def _on_digit(self, digit: DigitEvent) -> None:
        self.digits.put_nowait(digit.digit)

    def heard(self, nbytes: int, info: AudioInfo) -> None:
        self._heard_seconds += nbytes / (2 * info.rx_channels * info.rx_sample_rate)

    def sample_stats(self) -> None:
        with contextlib.suppress(BaresipError):
            self._stats = self.call.audio.stats()

    def report(self, seconds: float) -> None:
        """The call's timing health, numbers only: audio heard against wall time (a reader that drifts
        behind falls short), what baresip skipped to keep a slow reader live, and frames the agent's
        audio ran dry mid-word."""
        stats = self._stats
        log.info(
            "SIP audio: %.1f s heard over %.1f s; caller audio dropped %d bytes before the first read, "
            "skipped %d bytes behind the reader; agent frames starved %d",
            self._heard_seconds,
            seconds,
            stats.rx_dropped_bytes if stats else 0,
            stats.rx_discarded_bytes if stats else 0,
            stats.tx_starved_frames if stats else 0,
        )

    def detach(self) -> None:
        self.call.off(self._on_event)
        self.call.off_dtmf(self._on_digit)


class SipInputTransport(BaseInputTransport):
    def __init__(self, transport: SipTransport, sip: SipCall, params: TransportParams, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._transport = transport
        self._sip = sip
        self._resampler = create_stream_resampler()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)
        if self._reader is None:
            self._reader = self.create_task(self._read())
            await self._transport.connected()

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)
        await self._stop_reader()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._stop_reader()

    async def _stop_reader(self) -> None:
        if self._reader is not None:
            await self.cancel_task(self._reader)
            self._reader = None

    async def _read(self) -> None:
        audio, start, ticks = self._sip.call.audio, time.monotonic(), 0
        try:
            while not self._sip.closed.is_set():
                ticks += 1
                if ticks % _STATS_TICKS == 0:
                    self._sip.sample_stats()
                await asyncio.sleep(max(0.0, start + ticks * _TICK_SECONDS - time.monotonic()))
                while not self._sip.digits.empty():
                    digit = self._sip.digits.get_nowait()
                    with contextlib.suppress(ValueError):  # A-D: keys no form here asks for
                        await self.push_frame(InputDTMFFrame(button=KeypadEntry(digit)))
                try:
                    info = audio.info()
                    pcm = audio.read(max(info.rx_buffered, 2)) if info.rx_ready else b""
                except AudioRestarted:
                    continue  # re-negotiated (a re-INVITE): the next read binds to the new stream
                except AudioNotActive:
                    if self._sip.closed.is_set():
                        break
                    continue  # not up yet, or on hold
                if pcm:
                    self._sip.heard(len(pcm), info)
                    rate = info.rx_sample_rate
                    if info.rx_channels != 1:  # G.711 is mono; anything else is down-mixed
                        pcm = _first_channel(pcm, info.rx_channels)
                    pcm = await self._resampler.resample(pcm, rate, self.sample_rate)
                    await self.push_audio_frame(
                        InputAudioRawFrame(audio=pcm, sample_rate=self.sample_rate, num_channels=1)
                    )
        finally:  # the caller hung up, or the agent ended the call (the task is cancelled)
            self._sip.report(time.monotonic() - start)
        await self._transport.disconnected()


class SipOutputTransport(BaseOutputTransport):
    def __init__(
        self,
        transport: SipTransport,
        sip: SipCall,
        params: TransportParams,
        transfer_to: str | None,
        **kwargs: Any,
    ) -> None:
        super().__init__(params, **kwargs)
        self._transport = transport
        self._sip = sip
        self._transfer_to = transfer_to
        self._resampler = create_stream_resampler()

    async def start(self, frame: StartFrame) -> None:
        await super().start(frame)
        await self.set_transport_ready(frame)

    async def stop(self, frame: EndFrame) -> None:
        await super().stop(frame)  # the agent's last words are queued in baresip by now...
        await self._drained()  # ...and have been sent
        await self._hang_up()

    async def cancel(self, frame: CancelFrame) -> None:
        await super().cancel(frame)
        await self._hang_up()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            self._flush()

    async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
        audio = self._sip.call.audio
        try:
            info = audio.info()
            pcm = frame.audio
            if frame.sample_rate != info.tx_sample_rate:
                pcm = await self._resampler.resample(pcm, frame.sample_rate, info.tx_sample_rate)
            lead = int(_LEAD_SECONDS * info.tx_sample_rate) * 2 * info.tx_channels
            while pcm and not self._sip.closed.is_set():
                room = lead - audio.info().tx_buffered
                if room <= 0:
                    await asyncio.sleep(_TICK_SECONDS / 2)
                    continue
                taken = audio.write(pcm[: room - room % 2])
                pcm = pcm[taken:]
        except (AudioNotActive, AudioRestarted):
            return False  # the call went away (or is being re-negotiated): this chunk is lost
        return not self._sip.closed.is_set()

    async def write_transport_frame(self, frame: Frame) -> None:
        if isinstance(frame, TransferCallFrame):
            await self.push_frame(
                TransferOutcomeFrame(succeeded=await self._transfer()), FrameDirection.UPSTREAM
            )

    async def _transfer(self) -> bool:
        """Blind transfer (REFER) once the announcement has been heard. On success baresip ends the call."""
        if self._transfer_to is None:
            return False
        await self._drained()
        try:
            await self._sip.call.transfer(self._transfer_to, timeout=TRANSFER_TIMEOUT_SECONDS)
        except (BaresipError, ValueError) as error:
            log.warning("the transfer to the front desk failed (%s)", type(error).__name__)
            return False
        log.info("the call was put through to the front desk")
        return True

    async def _drained(self) -> None:
        with contextlib.suppress(AudioNotActive, AudioRestarted):
            while not self._sip.closed.is_set() and self._sip.call.audio.info().tx_buffered > 0:
                await asyncio.sleep(_TICK_SECONDS)
        await asyncio.sleep(_TAIL_SECONDS)

    def _flush(self) -> None:
        with contextlib.suppress(AudioNotActive, AudioRestarted):
            self._sip.call.audio.flush_tx()

    async def _hang_up(self) -> None:
        if self._sip.closed.is_set():
            return
        with contextlib.suppress(BaresipError):  # the caller hung up first: normal telephony
            await self._sip.call.hangup()


class SipTransport(BaseTransport):
    """One answered SIP call as a pipecat transport. Events: ``on_client_connected`` (the pipeline is up:
    greet) and ``on_client_disconnected`` (the call closed: the caller hung up, or it was transferred)."""

    def __init__(
        self, call: Call, *, params: TransportParams | None = None, transfer_to: str | None = None
    ) -> None:
        super().__init__()
        self._sip = SipCall(call)
        self._params = params or TransportParams(audio_in_enabled=True, audio_out_enabled=True)
        self._input = SipInputTransport(self, self._sip, self._params, name="SipInput")
        self._output = SipOutputTransport(self, self._sip, self._params, transfer_to, name="SipOutput")
        self._connected = False
        self._register_event_handler("on_client_connected")
        self._register_event_handler("on_client_disconnected")

    def input(self) -> SipInputTransport:
        return self._input

    def output(self) -> SipOutputTransport:
        return self._output

    @property
    def closed(self) -> asyncio.Event:
        return self._sip.closed

    async def connected(self) -> None:
        if not self._connected:
            self._connected = True
            await self._call_event_handler("on_client_connected", self._sip.call)

    async def disconnected(self) -> None:
        self._sip.detach()
        await self._call_event_handler("on_client_disconnected", self._sip.call)


def _first_channel(pcm: bytes, channels: int) -> bytes:
    frame = 2 * channels
    return b"".join(pcm[i : i + 2] for i in range(0, len(pcm) - frame + 1, frame))
