"""Per-call latency: a summary for the call's audit record, and Prometheus series for operations.

Numbers only, by construction: the Prometheus labels are closed sets (ingress, stage, end reason), and
the audit summary is ``CallMetrics``, whose fields are counts and milliseconds.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Literal, get_args

from prometheus_client import Counter, Gauge, Histogram

from voice_agent.audit import CallMetrics, EndReason

Ingress = Literal["webrtc", "telephony", "sip"]
Stage = Literal["turn_detection", "stt", "dialogue", "tts"]
#: What ended a caller's turn (``stt.EndedBy``): smart-turn, a whole answer, or the maximum pause.
EndedBy = Literal["smart_turn", "answer", "max_pause"]

_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 8.0)

VOICE_TO_VOICE = Histogram(
    "voice_agent_voice_to_voice_seconds",
    "End of the caller's speech to the first byte of the agent's reply audio.",
    ["ingress"],
    buckets=_BUCKETS,
)
STAGE_SECONDS = Histogram(
    "voice_agent_stage_seconds",
    "Time to first byte of each pipeline stage, per caller turn.",
    ["stage"],
    buckets=_BUCKETS,
)
CALLS = Counter(
    "voice_agent_calls_total", "Voice calls ended, by ingress and end reason.", ["ingress", "reason"]
)
ACTIVE = Gauge("voice_agent_calls_active", "Voice calls in progress.", ["ingress"])
TURN_ENDS = Counter(
    "voice_agent_turn_ends_total",
    "Caller turns by what ended them: the smart-turn model, a whole answer, or the maximum pause.",
    ["by"],
)
for _by in get_args(EndedBy):  # every series exists from the start, at zero
    TURN_ENDS.labels(_by)
BARGE_INS = Counter("voice_agent_barge_ins_total", "Times a caller spoke over the agent.", ["ingress"])


@dataclass
class _Turn:
    speech_ended: float
    decided: float
    transcribed: float
    replied: float | None = None


@dataclass
class CallLatency:
    """Fed by the transcriber (a turn was heard), the dialogue (a reply was sent to speech) and the
    output transport (the agent's audio started)."""

    ingress: Ingress
    turns: int = 0
    barge_ins: int = 0
    ended_by: dict[EndedBy, int] = field(
        default_factory=lambda: {"smart_turn": 0, "answer": 0, "max_pause": 0}
    )
    _open: _Turn | None = None
    _v2v: list[float] = field(default_factory=list)
    _stages: dict[Stage, list[float]] = field(
        default_factory=lambda: {"turn_detection": [], "stt": [], "dialogue": [], "tts": []}
    )

    def heard(
        self, speech_ended: float, decided: float, transcribed: float, ended_by: EndedBy = "smart_turn"
    ) -> None:
        self._open = _Turn(speech_ended, decided, transcribed)
        self.ended_by[ended_by] += 1
        TURN_ENDS.labels(ended_by).inc()

    def replied(self) -> None:
        if self._open is not None and self._open.replied is None:
            self._open.replied = time.time()

    def agent_audio_started(self) -> None:
        turn, self._open = self._open, None
        if turn is None or turn.replied is None:
            return  # the greeting, a silence prompt or a keypad answer: no caller speech to time from
        now = time.time()
        self.turns += 1
        stages: dict[Stage, float] = {
            "turn_detection": turn.decided - turn.speech_ended,
            "stt": turn.transcribed - turn.decided,
            "dialogue": turn.replied - turn.transcribed,
            "tts": now - turn.replied,
        }
        for stage, seconds in stages.items():
            self._stages[stage].append(max(0.0, seconds))
            STAGE_SECONDS.labels(stage).observe(max(0.0, seconds))
        v2v = max(0.0, now - turn.speech_ended)
        self._v2v.append(v2v)
        VOICE_TO_VOICE.labels(self.ingress).observe(v2v)

    def barge_in(self) -> None:
        self.barge_ins += 1
        BARGE_INS.labels(self.ingress).inc()

    def summary(self) -> CallMetrics:
        def p50(values: list[float]) -> float | None:
            return round(statistics.median(values) * 1000, 1) if values else None

        return CallMetrics(
            ingress=self.ingress,
            turns=self.turns,
            voice_to_voice_p50_ms=p50(self._v2v),
            voice_to_voice_max_ms=round(max(self._v2v) * 1000, 1) if self._v2v else None,
            turn_detection_p50_ms=p50(self._stages["turn_detection"]),
            stt_p50_ms=p50(self._stages["stt"]),
            dialogue_p50_ms=p50(self._stages["dialogue"]),
            tts_p50_ms=p50(self._stages["tts"]),
            barge_ins=self.barge_ins,
            turns_ended_by_answer=self.ended_by["answer"],
            turns_at_max_pause=self.ended_by["max_pause"],
        )


def call_started(ingress: Ingress) -> None:
    ACTIVE.labels(ingress).inc()


def call_ended(ingress: Ingress, reason: EndReason) -> None:
    ACTIVE.labels(ingress).dec()
    CALLS.labels(ingress, reason).inc()
