"""A carrier's media-stream messages, each checked for shape before pipecat's serializer reads it.

Why: pipecat's serializers raise on a message that is JSON but not an object (``null``, ``[]``, a
``media`` that is a number), and the transport's receive loop ends at the first exception: one forged or
garbled message would leave the rest of the call unheard. They also log a message they cannot parse
whole, payload included. Here a message that is not a JSON object with a string ``event`` is dropped
before the serializer sees it, and whatever the serializer still raises drops that one message; both
are counted by carrier, never logged with their content.
"""

from __future__ import annotations

import json
import logging

from pipecat.frames.frames import Frame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.serializers.base_serializer import FrameSerializer
from prometheus_client import Counter

__all__ = ["GuardedSerializer", "well_formed"]

log = logging.getLogger(__name__)

#: Carriers' media messages dropped as malformed (label: the configured carrier, a closed set).
DROPPED = Counter(
    "voice_agent_carrier_messages_dropped_total",
    "Carrier media-stream messages dropped as malformed.",
    ["carrier"],
)
#: Far above a 20 ms media frame (about 250 bytes of base64) or a start message; a larger one is junk.
MAX_MESSAGE = 64 * 1024


def well_formed(data: str | bytes) -> bool:
    """A JSON object whose ``event`` is a string, and whose ``media`` (if any) is an object."""
    if len(data) > MAX_MESSAGE:
        return False
    try:
        message = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return False
    return (
        isinstance(message, dict)
        and isinstance(message.get("event"), str)
        and isinstance(message.get("media", {}), dict)
        and all(isinstance(message.get(part, {}), dict) for part in ("start", "dtmf", "stop", "mark"))
    )


class GuardedSerializer(FrameSerializer):
    """The carrier's own serializer, behind a shape check; every other call goes straight through."""

    def __init__(self, inner: FrameSerializer, carrier: str) -> None:
        super().__init__()
        self._inner = inner
        self._dropped = DROPPED.labels(carrier)

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]  # as pipecat's own
        await self._inner.setup(setup)

    async def serialize(self, frame: Frame) -> str | bytes | None:
        return await self._inner.serialize(frame)

    async def deserialize(self, data: str | bytes) -> Frame | None:
        if not well_formed(data):
            self._dropped.inc()
            return None
        try:
            return await self._inner.deserialize(data)
        except Exception as error:  # one bad message costs that message, not the rest of the call
            self._dropped.inc()
            log.warning("a malformed carrier message was dropped (%s)", type(error).__name__)
            return None
