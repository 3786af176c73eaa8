"""A worker's admission, drain and readiness, as a load balancer and an orchestrator see them."""

from __future__ import annotations

import asyncio

import pytest

from fhir_adapters import FhirGateway
from harness.sandbox import Sandbox, free_port
from voice_agent import wiring
from voice_agent.ingress.calls import CallRegistry, CallsFull, Draining
from voice_agent.ingress.readiness import ReadinessProbe


async def test_a_draining_worker_refuses_new_calls_and_lets_live_ones_finish() -> None:
    calls = CallRegistry(4)
    finished = asyncio.Event()

    async def short_call() -> None:
        await asyncio.sleep(0.3)
        finished.set()

    calls.start(short_call())
    ended: list[str] = []

    async def end_live_calls() -> None:
        ended.append("asked")

    drained = asyncio.create_task(calls.drain(5.0, end_live_calls))
    await asyncio.sleep(0.05)
    with pytest.raises(Draining):
        calls.reserve()
    with pytest.raises(CallsFull):  # what the ingresses catch: 503, WebSocket 1013, SIP 486
        calls.start(asyncio.sleep(0))
    assert await drained == 0 and finished.is_set()
    assert ended == []  # nothing had to be cut short


async def test_calls_still_live_at_the_bound_are_ended_politely_then_awaited() -> None:
    calls = CallRegistry(4)
    stop = asyncio.Event()

    async def long_call() -> None:
        await stop.wait()  # ends only when told to (the goodbye played, the line hung up)

    for _ in range(2):
        calls.start(long_call())

    async def end_live_calls() -> None:
        stop.set()

    assert await calls.drain(0.3, end_live_calls) == 2
    assert calls.active == 0


async def test_readiness_follows_fhir_and_the_drain(sandbox: Sandbox) -> None:
    calls = CallRegistry(2)
    async with wiring.gateway(sandbox.settings) as fhir:
        probe = ReadinessProbe(calls, fhir, None)
        state = await probe.check()
        assert state.fhir and not state.models and not state.ready  # models not loaded yet
    dead = sandbox.settings.model_copy(update={"fhir_base_url": f"https://127.0.0.1:{free_port()}/fhir"})
    async with wiring.gateway(dead) as unreachable:
        state = await ReadinessProbe(calls, unreachable, None).check()
        assert not state.fhir and not state.ready


async def test_the_fhir_ping_rejects_a_server_that_is_not_fhir(sandbox: Sandbox) -> None:
    """A wrong base URL (the right host, another service) must not pass for a FHIR server."""
    wrong = sandbox.settings.model_copy(
        update={"fhir_base_url": sandbox.settings.fhir_base_url.rsplit("/fhir", 1)[0] + "/nowhere"}
    )
    async with wiring.gateway(wrong) as fhir:
        assert isinstance(fhir, FhirGateway)
        with pytest.raises(Exception) as refused:
            await fhir.ping()
    assert type(refused.value).__module__.startswith("fhir_adapters")
