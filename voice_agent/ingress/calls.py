"""The calls a process is running: admission (a ceiling, not overload), draining, and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Literal, get_args

from prometheus_client import Counter

from voice_agent.audit.alerts import BreachDetector, SignalKind
from voice_agent.audit.events import CallRefusal
from voice_agent.audit.recorder import AuditRecorder

log = logging.getLogger(__name__)

#: Calls turned away at the door, by ingress and reason (the audit event's closed set, so no label
#: carries call data): a breach-detection signal.
REFUSED = Counter(
    "voice_agent_calls_refused_total", "Calls refused before they began, by reason.", ["ingress", "reason"]
)


#: Which refusals are a breach-detection signal: failed carrier authentication, and a full line.
_SIGNAL: dict[CallRefusal, SignalKind] = {
    **{
        reason: "carrier-auth-failure"
        for reason in get_args(CallRefusal)
        if reason not in ("handshake", "ceiling", "rate")  # every other refusal is failed authentication
    },
    "ceiling": "ceiling-refusal",
    "rate": "ceiling-refusal",
}


async def refused(
    auditor: AuditRecorder,
    detector: BreachDetector,
    ingress: Literal["webrtc", "telephony", "sip"],
    reason: CallRefusal,
    *,
    record: bool = True,
) -> None:
    """A call turned away at the door: counted, logged (the reason only), audited and signalled, one
    way for all. ``record=False`` (a flood from one source already on record) counts it only."""
    REFUSED.labels(ingress, reason).inc()
    if not record:
        return
    log.warning("a %s call was refused (%s)", ingress, reason)
    await auditor.call_refused(ingress, reason)
    if reason in _SIGNAL:
        await detector.signal(_SIGNAL[reason])


class CallsFull(Exception):
    """The process is at ``max_concurrent_calls``."""


class Draining(CallsFull):
    """The process is draining (SIGTERM): it takes no new calls, whatever its load."""


class CallRegistry:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._tasks: set[asyncio.Task[Any]] = set()
        self._reserved = 0
        self.draining = False

    @property
    def active(self) -> int:
        return len(self._tasks) + self._reserved

    def reserve(self) -> None:
        """Hold a place while a call is being set up (a WebRTC offer), or refuse."""
        self._admit()
        self._reserved += 1

    def release(self) -> None:
        self._reserved = max(0, self._reserved - 1)

    def start(self, call: Coroutine[Any, Any, Any], *, reserved: bool = False) -> asyncio.Task[Any]:
        if reserved:
            self.release()
        else:
            try:
                self._admit()
            except CallsFull:
                call.close()
                raise
        task = asyncio.get_running_loop().create_task(call)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _admit(self) -> None:
        if self.draining:
            raise Draining
        if self.active >= self.limit:
            raise CallsFull

    async def drain(
        self,
        grace_seconds: float,
        end_live_calls: Callable[[], Awaitable[object]],
        *,
        settle_seconds: float = 20.0,
    ) -> int:
        """Stop taking calls; let live ones finish for up to ``grace_seconds``; then ``end_live_calls``
        (which says goodbye on each and ends its session) and give them ``settle_seconds`` to play it and
        hang up. Returns how many calls had to be ended. Whatever is still running after that is left to
        ``shutdown``."""
        self.draining = True
        log.info("draining: taking no new calls; %d in progress", self.active)
        await self._wait_idle(grace_seconds)
        ended = len(self._tasks)
        if ended:
            log.warning("drain bound reached: ending %d calls politely", ended)
            await end_live_calls()
            await self._wait_idle(settle_seconds)
        return ended

    async def _wait_idle(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.active and time.monotonic() < deadline:
            await asyncio.sleep(0.2)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("a call ended with an error (%s)", type(error).__name__)

    async def shutdown(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
