"""One voice call, any ingress: the pipeline, its lifetime, and the session it is bound to.

transport in → Silero VAD → turn transcriber (smart-turn + Whisper) → user turns (interruptions,
silence) → dialogue → piper (its own process) → transport out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial

import aiohttp
from pipecat.audio.vad.silero import SileroVADAnalyzer
from pipecat.audio.vad.vad_analyzer import VADParams
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.audio.vad_processor import VADProcessor
from pipecat.services.piper.tts import PiperHttpTTSService
from pipecat.transports.base_transport import BaseTransport
from pipecat.turns.user_start import ExternalUserTurnStartStrategy
from pipecat.turns.user_stop import ExternalUserTurnStopStrategy
from pipecat.turns.user_turn_processor import UserTurnProcessor
from pipecat.turns.user_turn_strategies import UserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from voice_agent.dialogue import templates
from voice_agent.dialogue.conductor import Conversation
from voice_agent.dialogue.factory import conversations
from voice_agent.dialogue.understanding import Understanding
from voice_agent.dialogue.understanding.hybrid import (
    build_understanding,
    close_understanding,
    warm_understanding,
)
from voice_agent.dialogue.understanding.rules import RulesUnderstanding
from voice_agent.pipeline import metrics
from voice_agent.pipeline.dialogue_bridge import DialogueProcessor
from voice_agent.pipeline.metrics import CallLatency, Ingress
from voice_agent.pipeline.speech_loader import SpeechModels
from voice_agent.pipeline.stt import SAMPLE_RATE, TurnHeard, TurnTranscriber
from voice_agent.pipeline.tts import VOICE_SAMPLE_RATE, VoiceServer
from voice_agent.pipeline.vocabulary import clinic_vocabulary
from voice_agent.runtime import Runtime
from voice_agent.session import EndReason
from voice_agent.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class VoiceEngine:
    """What every call of the process shares: the agent, the models, the voice server, understanding."""

    agent: Runtime
    models: SpeechModels
    voice: VoiceServer
    http: aiohttp.ClientSession
    understanding: Understanding
    conversation_factory: partial[Conversation]


@contextlib.asynccontextmanager
async def voice_engine(agent: Runtime) -> AsyncIterator[VoiceEngine]:
    """Load the models and start the voice server before the first call (not during it)."""
    settings = agent.settings
    models = SpeechModels(settings).load()
    voice = VoiceServer(models.check_voice()).start()
    understanding = build_understanding(
        settings.understanding,
        settings,
        RulesUnderstanding(),
        timeout_seconds=settings.llm_voice_timeout_seconds,
    )
    try:
        await warm_understanding(understanding)
        async with aiohttp.ClientSession() as http:
            yield VoiceEngine(agent, models, voice, http, understanding, conversations(agent))
    finally:
        await close_understanding(understanding)
        voice.stop()


def voice_activity(settings: Settings) -> VADProcessor:
    """Silero VAD as the settings tune it: one per call (it keeps per-stream state)."""
    return VADProcessor(
        vad_analyzer=SileroVADAnalyzer(
            params=VADParams(
                confidence=settings.vad_confidence,
                start_secs=settings.vad_start_seconds,
                stop_secs=settings.vad_stop_seconds,
                min_volume=settings.vad_min_volume,
            )
        )
    )


async def run_voice_call(
    engine: VoiceEngine,
    transport: BaseTransport,
    *,
    ingress: Ingress,
    caller_number: str | None = None,
    source: str | None = None,
    audio_out_sample_rate: int = 24_000,
    live_transfer: Callable[[], bool] | None = None,
) -> EndReason:
    """Run one call to its end; returns why it ended. The session is wiped when this returns.
    ``live_transfer`` says whether the call can be put through to the front desk now (SIP only)."""
    agent, settings = engine.agent, engine.agent.settings
    latency = CallLatency(ingress)
    metrics.call_started(ingress)
    reason: EndReason = "hangup"
    try:
        async with agent.sessions.call(caller_number=caller_number, source=source) as session:
            conversation = engine.conversation_factory(session=session, understanding=engine.understanding)
            conversation.live_transfer = live_transfer

            def heard(turn: TurnHeard) -> None:
                latency.heard(turn.speech_ended, turn.turn_decided, turn.transcribed, turn.ended_by)

            transcriber = TurnTranscriber(
                recogniser=engine.models.recogniser(),
                smart_turn=engine.models.smart_turn(),
                max_pause_seconds=settings.turn_max_pause_seconds,
                vocabulary=partial(clinic_vocabulary, agent.scheduling),
                on_turn=heard,
            )

            async def _audit_transfer(succeeded: bool) -> None:
                await agent.auditor.transfer(succeeded=succeeded)

            user_turns = UserTurnProcessor(
                user_turn_strategies=UserTurnStrategies(
                    start=[ExternalUserTurnStartStrategy(enable_interruptions=True)],
                    stop=[ExternalUserTurnStopStrategy(wait_for_transcript=False)],
                ),
                user_idle_timeout=settings.silence_prompt_seconds,
            )
            dialogue = DialogueProcessor(
                conversation=conversation,
                session=session,
                sessions=agent.sessions,
                latency=latency,
                silence_prompts_before_hangup=settings.silence_prompts_before_hangup,
                dtmf_pause_seconds=settings.dtmf_pause_seconds,
                gather_seconds=settings.answer_gather_seconds,
                on_transfer=_audit_transfer,
            )
            tts = PiperHttpTTSService(
                base_url=engine.voice.url, aiohttp_session=engine.http, sample_rate=VOICE_SAMPLE_RATE
            )
            vad = voice_activity(settings)
            pipeline = Pipeline(
                [transport.input(), vad, transcriber, user_turns, dialogue, tts, transport.output()]
            )
            worker = PipelineWorker(
                pipeline,
                params=PipelineParams(
                    audio_in_sample_rate=SAMPLE_RATE, audio_out_sample_rate=audio_out_sample_rate
                ),
                enable_rtvi=False,  # RTVI would send transcripts to the client; the page shows none
                enable_turn_tracking=False,
                idle_timeout_secs=None,  # the session's idle logoff ends calls, not pipecat
            )
            finished = False

            async def _silence(_processor: object) -> None:
                await dialogue.on_silence()

            connected = asyncio.Event()

            async def _connected(_transport: object, _client: object) -> None:
                connected.set()
                await dialogue.greet()

            async def _disconnected(_transport: object, _client: object) -> None:
                await worker.cancel()

            user_turns.add_event_handler("on_user_turn_idle", _silence)
            transport.add_event_handler("on_client_connected", _connected)
            transport.add_event_handler("on_client_disconnected", _disconnected)

            async def _session_ended(why: EndReason) -> None:
                # The 15-minute logoff, or a draining worker, ended the session under a live call.
                if finished:
                    return
                if why == "timeout":
                    await dialogue.end_call(templates.TIMED_OUT, "timeout")
                elif why == "shutdown":  # a draining worker's bound ran out
                    await dialogue.end_call(templates.SHUTTING_DOWN, "shutdown")
                else:
                    await worker.cancel()

            session.on_end.append(_session_ended)

            async def _time_limit() -> None:
                try:
                    await asyncio.wait_for(connected.wait(), settings.call_connect_seconds)
                except TimeoutError:  # nobody there: release the line
                    await worker.cancel()
                    return
                await asyncio.sleep(settings.call_max_seconds)
                await dialogue.end_call(templates.CALL_TOO_LONG, "timeout")

            limit = asyncio.get_running_loop().create_task(_time_limit(), name="call-time-limit")
            try:
                runner = WorkerRunner(handle_sigint=False)
                await runner.add_workers(worker)
                await runner.run()
            finally:
                limit.cancel()
                finished = True
                session.metrics = latency.summary()
            reason = dialogue.ended or "hangup"
            await agent.sessions.end(session, reason)
            reason = session.ended or reason
    except Exception:
        reason = "error"
        raise
    finally:
        metrics.call_ended(ingress, reason)
    return reason
