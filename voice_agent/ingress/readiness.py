"""Is this worker fit to take calls? Models loaded, FHIR answering, not draining: what a load balancer,
the SIP edge's operator or Kubernetes asks before sending it calls, and what the autoscaler reads."""

from __future__ import annotations

import time
from dataclasses import dataclass

from prometheus_client import Counter, Gauge

from fhir_adapters import FhirError, FhirGateway
from voice_agent.ingress.calls import CallRegistry
from voice_agent.pipeline.call import VoiceEngine

#: Per worker, no labels: the HorizontalPodAutoscaler's "calls per worker" target reads this.
CALLS_ACTIVE = Gauge("voice_agent_worker_calls_active", "Calls in progress in this worker.")
CALL_LIMIT = Gauge("voice_agent_worker_call_limit", "Calls this worker takes at once (its ceiling).")
READY = Gauge("voice_agent_worker_ready", "1 when this worker takes calls (models, FHIR, not draining).")
DRAINING = Gauge("voice_agent_worker_draining", "1 while this worker drains before it stops.")
#: As of the last readiness probe (Kubernetes or the load balancer probe every few seconds).
FHIR_UP = Gauge("voice_agent_worker_fhir_up", "1 when the worker's last FHIR check was answered.")
MODELS_UP = Gauge("voice_agent_worker_models_up", "1 when the worker's speech models are loaded.")
#: A load balancer that stopped probing a worker (or probes the wrong one) shows here.
PROBES = Counter("voice_agent_health_probes", "Health and readiness probes answered.", ["probe"])

#: A probe every few seconds must not become a FHIR request every few seconds.
FHIR_CHECK_SECONDS = 5.0


@dataclass(frozen=True)
class Readiness:
    models: bool
    fhir: bool
    draining: bool
    calls: int
    max_calls: int

    @property
    def ready(self) -> bool:
        return self.models and self.fhir and not self.draining


class ReadinessProbe:
    def __init__(self, calls: CallRegistry, fhir: FhirGateway, engine: VoiceEngine | None) -> None:
        self._calls = calls
        self._fhir = fhir
        self._engine = engine
        self._fhir_ok = False
        self._checked = -FHIR_CHECK_SECONDS
        CALLS_ACTIVE.set_function(lambda: calls.active)
        CALL_LIMIT.set(calls.limit)
        DRAINING.set_function(lambda: int(calls.draining))
        READY.set(0)

    async def check(self) -> Readiness:
        now = time.monotonic()
        if now - self._checked >= FHIR_CHECK_SECONDS:
            self._checked = now
            try:
                await self._fhir.ping()
                self._fhir_ok = True
            except FhirError:
                self._fhir_ok = False
        state = Readiness(
            models=self._engine is not None and self._engine.voice.alive(),
            fhir=self._fhir_ok,
            draining=self._calls.draining,
            calls=self._calls.active,
            max_calls=self._calls.limit,
        )
        READY.set(int(state.ready))
        FHIR_UP.set(int(state.fhir))
        MODELS_UP.set(int(state.models))
        return state
