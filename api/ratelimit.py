"""Per-user request rate limits on the API's mutating routes: counted in Redis, which every API
instance shares, or in this process, which only the single-process embedded stack may rely on."""

from __future__ import annotations

import math
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

import structlog
from fastapi import Request
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from api.deps import CurrentUser
from api.errors import TooManyRequests, Unavailable
from api.schemas.errors import ErrorOut
from cofounder.settings import Settings

log = structlog.get_logger()

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
WINDOW_SECONDS = 60.0
KEY_PREFIX = "cofounder:rate:"
# A Redis that is down is a 503 within about a second, not after redis-py's default backoff
# (1, 2, 4 s): one immediate retry is kept, to reconnect a pooled connection the server dropped.
REDIS_TIMEOUT_SECONDS = 1.0

# Sliding-window log: a user's admitted requests are a sorted set of their times (Redis's clock,
# so the instances' clocks need not agree); a request is admitted, and recorded, only while fewer
# than the limit fall in the last window, so no window ever holds more than the limit (a fixed
# window allows 2x across its boundary; a token bucket or GCRA, a full burst then its refill).
# Its cost, one small entry per admitted request for a window, is nothing at a few hundred.
# One script, so reading and adding are one atomic step for every instance.
SLIDING_WINDOW = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local window_ms = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - window_ms)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], now_ms, ARGV[3])
    redis.call('PEXPIRE', KEYS[1], window_ms)
    return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return tonumber(oldest[2]) + window_ms - now_ms
"""

# What the limit adds to the OpenAPI of each route it guards; a route's own entry for a status
# (its 503) stays.
LIMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    429: {
        "model": ErrorOut,
        "description": "Too many POST, PUT, PATCH or DELETE requests by this user in a minute.",
        "headers": {
            "Retry-After": {
                "description": "Seconds until a request would be admitted.",
                "schema": {"type": "integer"},
            }
        },
    },
    503: {"model": ErrorOut, "description": "The database or the rate limiter is unavailable."},
}


class RateLimiter(Protocol):
    """At most `limit` requests per key in any `window` seconds."""

    limit: int
    window: float

    async def hit(self, key: str) -> float:
        """Record one request of `key` and answer 0; or, when `limit` of its requests already
        fall in the window, record nothing and answer the seconds until the oldest leaves it."""
        ...

    async def aclose(self) -> None:
        """Let go of what the limiter holds (Redis's connections)."""
        ...


class RedisLimiter:
    """The sliding window in Redis: one count per user for every API instance."""

    def __init__(self, url: str, limit: int, window: float = WINDOW_SECONDS) -> None:
        self.limit, self.window = limit, window
        self._redis = Redis.from_url(
            url,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1),
        )
        self._script = self._redis.register_script(SLIDING_WINDOW)

    async def hit(self, key: str) -> float:
        # A unique member, so two requests in one millisecond are two entries.
        args: list[int | str] = [self.limit, round(self.window * 1000), uuid.uuid4().hex]
        try:
            wait_ms = await self._script(keys=[KEY_PREFIX + key], args=args)
        except RedisError as err:
            # Fail closed: a limit that lapses whenever Redis is down lapses when a flood has
            # brought it down. redis-py's messages name the host and port, never the password.
            log.error("rate limiter unavailable", error=repr(err))
            raise Unavailable("the rate limiter is unavailable; try again") from None
        return float(wait_ms) / 1000

    async def aclose(self) -> None:
        await self._redis.aclose()


class InProcessLimiter:
    """The same sliding window in this process's memory. `hit` never awaits, so on one event
    loop it is atomic; another process (a second API instance) keeps counts of its own."""

    def __init__(
        self,
        limit: int,
        window: float = WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window = limit, window
        self._clock = clock
        self._times: dict[str, deque[float]] = {}
        self._swept = clock()

    async def hit(self, key: str) -> float:
        now = self._clock()
        self._sweep(now)
        times = self._times.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) >= self.limit:
            return times[0] + self.window - now
        times.append(now)
        return 0.0

    def _sweep(self, now: float) -> None:
        """Once a window, forget the users with nothing in it: memory holds recent users only."""
        if now - self._swept < self.window:
            return
        self._swept = now
        for key in [key for key, times in self._times.items() if times[-1] <= now - self.window]:
            del self._times[key]

    async def aclose(self) -> None:
        self._times.clear()


def open_limiter(settings: Settings) -> RateLimiter | None:
    """Redis's limiter when REDIS_URL is set, else this process's; None when there is no limit."""
    limit = settings.rate_limit_per_minute
    if limit == 0:
        return None
    if settings.redis_url:  # an empty REDIS_URL= is unset, as the settings' check reads it
        return RedisLimiter(settings.redis_url.get_secret_value(), limit)
    return InProcessLimiter(limit)


async def limit_mutations(request: Request, user: CurrentUser) -> None:
    """Count a POST, PUT, PATCH or DELETE against its user's limit (429 past it); GET and HEAD
    pass uncounted.

    The user comes from CurrentUser, which FastAPI resolves once per request for this and the
    route alike. Every mutating request of a signed-in user counts, whatever the route then
    answers (a 404, a 409, a 422 for a field): probing ids costs what using them does. A request
    refused here is not counted, so its Retry-After holds; one without a user (a 401) never
    gets here.
    """
    limiter: RateLimiter | None = request.app.state.limiter
    if limiter is None or request.method not in MUTATING:
        return
    wait = await limiter.hit(user.id)
    if wait > 0:
        seconds = max(1, math.ceil(wait))
        raise TooManyRequests(
            f"too many requests: at most {limiter.limit} POST, PUT, PATCH or DELETE requests a"
            f" minute per user; try again in {seconds} s",
            retry_after=seconds,
        )
