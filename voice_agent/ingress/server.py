"""uvicorn, with a drain before it stops: SIGTERM (an upgrade, a scale-in, ``systemctl stop``) first stops
new calls and lets live ones finish (``Settings.drain_seconds``), then ends the rest politely, and only
then lets uvicorn close its sockets and run the app's shutdown. A second signal stops at once."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from types import FrameType

import uvicorn
from fastapi import FastAPI

log = logging.getLogger(__name__)


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self._app = app
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_task: asyncio.Task[None] | None = None
        self._drain_requested = False

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        drain: Callable[[], Awaitable[None]] | None = getattr(self._app.state, "drain", None)
        if self._drain_requested or drain is None or self._loop is None or not self.started:
            super().handle_exit(sig, frame)  # a second signal, or not serving yet: stop now
            return
        self._drain_requested = True
        log.info("%s: draining before stopping", signal.Signals(sig).name)
        self._captured_signals.append(sig)  # uvicorn re-raises it once stopped, as it would have
        self._loop.call_soon_threadsafe(self._start_drain, drain)

    def _start_drain(self, drain: Callable[[], Awaitable[None]]) -> None:
        async def drain_then_stop() -> None:
            try:
                await drain()
            except Exception as error:
                log.error("drain failed (%s); stopping", type(error).__name__)
            self.should_exit = True

        self._drain_task = asyncio.get_running_loop().create_task(drain_then_stop(), name="drain")
