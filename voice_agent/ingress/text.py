"""The text channel: the same dialogue, gateway, audit and session code as a call, over lines of text.

Stable interface for outside tools: the agent's greeting is printed as one line; then each line read from
standard input is one caller turn, answered by exactly one line, flushed. The process exits 0 when the
call ends (goodbye, escalation hand-off, idle timeout, or end of input).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import sys
from collections.abc import AsyncIterator, Callable

from voice_agent.dialogue import templates
from voice_agent.dialogue.conductor import Conversation
from voice_agent.dialogue.understanding import Understanding
from voice_agent.runtime import Runtime
from voice_agent.session import EndReason

Emit = Callable[[str], None]


async def run_call(
    agent: Runtime,
    conversation_factory: Callable[..., Conversation],
    understanding: Understanding,
    lines: AsyncIterator[str],
    emit: Emit,
    *,
    caller_number: str | None = None,
) -> EndReason:
    """Run one call to its end over ``lines``; returns why it ended."""
    async with agent.sessions.call(caller_number=caller_number) as session:
        ended = asyncio.Event()

        async def _on_end(_reason: EndReason) -> None:
            ended.set()

        session.on_end.append(_on_end)
        conversation = conversation_factory(session=session, understanding=understanding)
        emit((await conversation.greet()).text)
        while True:
            line_task = asyncio.ensure_future(anext(lines))
            end_task = asyncio.ensure_future(ended.wait())
            done, _ = await asyncio.wait({line_task, end_task}, return_when=asyncio.FIRST_COMPLETED)
            if line_task not in done:  # the session ended under us: the idle timeout logged it off
                line_task.cancel()
                emit(templates.TIMED_OUT)
                return session.ended or "timeout"
            end_task.cancel()
            try:
                line = line_task.result()
            except StopAsyncIteration:
                return "hangup"  # leaving the block ends the session as a hang-up
            agent.sessions.touch(session)
            reply = await conversation.respond(line.strip())
            emit(reply.text)
            agent.sessions.touch(session)
            if reply.end is not None:
                await agent.sessions.end(session, reply.end)
                return reply.end


async def stdin_lines() -> AsyncIterator[str]:
    """Lines from standard input without a blocking thread (which would outlive an idle timeout)."""
    mode = os.fstat(sys.stdin.fileno()).st_mode
    if stat.S_ISREG(mode):  # a file redirected in: no pipe transport for those
        for line in sys.stdin:
            yield line
        return
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while raw := await reader.readline():
            yield raw.decode("utf-8", "replace")
    finally:
        with contextlib.suppress(Exception):
            transport.close()


def stdout_emit(line: str) -> None:
    """One agent turn, one line, flushed: a turn never spans lines, whatever the template holds."""
    sys.stdout.write(" ".join(line.split()) + "\n")
    sys.stdout.flush()
