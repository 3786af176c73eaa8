"""Per-source rate limits at the app's own doors (WebRTC offers, carrier WebSocket upgrades), beside
nginx's ``limit_req``: a worker reached without the front, or a front whose limits a clinic loosened,
still holds. Moving windows per worker, in memory (``limits``): a source that spreads itself over every
worker gets the limit once per worker, and the call ceiling bounds the rest.
"""

from __future__ import annotations

from typing import Literal

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

__all__ = ["Door", "SourceLimits"]

#: ``ice`` hands out TURN credentials, so it is limited like the offers it precedes.
Door = Literal["offer", "ice", "stream"]

#: One audited refusal per source, door and minute: a flood is one audit event and one signal, not a
#: flood of database writes (the metric still counts every refusal).
_AUDIT_ONCE = RateLimitItemPerMinute(1)


class SourceLimits:
    def __init__(self, *, offers_per_minute: int, streams_per_minute: int) -> None:
        self._limiter = MovingWindowRateLimiter(MemoryStorage())
        self._items = {
            "offer": RateLimitItemPerMinute(offers_per_minute),
            "ice": RateLimitItemPerMinute(offers_per_minute),
            "stream": RateLimitItemPerMinute(streams_per_minute),
        }

    async def admit(self, door: Door, source: str | None) -> bool:
        """Count one request from ``source`` (the connection's own peer address); False: over its limit."""
        return await self._limiter.hit(self._items[door], door, source or "unknown")

    async def first_refusal(self, door: Door, source: str | None) -> bool:
        """Whether this refusal is the first from ``source`` at this door this minute (audit it then)."""
        return await self._limiter.hit(_AUDIT_ONCE, "refusal", door, source or "unknown")
