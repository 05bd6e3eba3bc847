"""Per-user rate limits on the API's mutating routes, counted in a real redis-server (which two
API instances share) and in the process; Clerk users sign in as in tests/test_auth.py.

The requests are cancels of a build that does not exist: a 404, which counts like any answer,
so no workflow is needed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import redis
import structlog
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from api.ratelimit import KEY_PREFIX, InProcessLimiter, RateLimiter, RedisLimiter, open_limiter
from cofounder.settings import Settings
from tests.clerk_tokens import ISSUER, Jwks, bearer, clerk_settings, token
from tests.redis_server import RedisServer, redis_binary

LIMIT = 3
Sessions = async_sessionmaker[AsyncSession]
Api = tuple[FastAPI, httpx.AsyncClient]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(redis_binary(), tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    endpoint = Jwks()
    with endpoint.server:
        yield endpoint


def limited(settings: Settings, jwks: Jwks, redis_url: str | None = None) -> Settings:
    """Clerk sign-in and LIMIT changes a minute, in Redis when `redis_url` is given."""
    url = SecretStr(redis_url) if redis_url else None
    update = {"rate_limit_per_minute": LIMIT, "redis_url": url}
    return clerk_settings(settings, jwks).model_copy(update=update)


@pytest.fixture(params=["redis", "in-process"])
def each_limiter(request: pytest.FixtureRequest, settings: Settings, jwks: Jwks) -> Settings:
    """`limited` settings, for each limiter in turn."""
    if request.param == "in-process":
        return limited(settings, jwks)
    return limited(settings, jwks, request.getfixturevalue("redis_server").url)


@asynccontextmanager
async def serve(settings: Settings, env: WorkflowEnvironment) -> AsyncIterator[Api]:
    """One API instance, in-process; two of them share only what their settings point at."""
    app = create_app(settings, client=env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield app, client


def signed_in() -> tuple[str, dict[str, str]]:
    """A new user's id and headers: each test counts against users of its own."""
    sub = f"user_{uuid.uuid4().hex[:12]}"
    return sub, bearer(token(sub=sub))


async def cancel(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    return (await client.post("/api/builds/nosuchbuild/cancel", headers=headers)).status_code


async def test_past_the_limit_a_users_changes_are_refused_until_retry_after(
    each_limiter: Settings, sessions: Sessions, env: WorkflowEnvironment
) -> None:
    (_, alice), (_, bob) = signed_in(), signed_in()
    async with serve(each_limiter, env) as (_, api):
        counted = [await cancel(api, alice) for _ in range(LIMIT)]
        refused = await api.post("/api/builds/nosuchbuild/cancel", headers=alice)
        reads = [(await api.get("/api/builds", headers=alice)).status_code for _ in range(LIMIT)]
        others = await cancel(api, bob)

    assert counted == [404] * LIMIT  # refusals of the route count: probing costs as much
    assert refused.status_code == 429, refused.text
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    detail = refused.json()["detail"]
    assert f"at most {LIMIT} POST, PUT, PATCH or DELETE requests a minute per user" in detail
    assert reads == [200] * LIMIT  # reads are not limited
    assert others == 404  # nor is another user by this one's count


async def test_two_api_instances_share_one_count_in_redis(
    redis_server: RedisServer,
    settings: Settings,
    jwks: Jwks,
    sessions: Sessions,
    env: WorkflowEnvironment,
) -> None:
    shared = limited(settings, jwks, redis_server.url)
    alice_id, alice = signed_in()
    async with serve(shared, env) as (_, one), serve(shared, env) as (_, two):
        counted = [await cancel(api, alice) for api in (one, two, one)]
        refused = [await cancel(api, alice) for api in (one, two)]

    assert (counted, refused) == ([404] * LIMIT, [429, 429])
    with redis.Redis.from_url(redis_server.url) as client:
        assert client.exists(KEY_PREFIX + alice_id) == 1  # keyed by the user id, not the token


async def test_the_token_is_verified_once_per_request(
    each_limiter: Settings,
    sessions: Sessions,
    env: WorkflowEnvironment,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, alice = signed_in()
    async with serve(each_limiter, env) as (app, api):
        verify, calls = app.state.clerk.verify, []

        async def counting(value: str) -> Any:
            calls.append(value)
            return await verify(value)

        monkeypatch.setattr(app.state.clerk, "verify", counting)
        assert await cancel(api, alice) == 404
    assert len(calls) == 1


async def test_webhooks_and_health_are_not_limited(
    settings: Settings, sessions: Sessions, env: WorkflowEnvironment
) -> None:
    one_a_minute = settings.model_copy(update={"rate_limit_per_minute": 1})  # dev mode
    async with serve(one_a_minute, env) as (_, api):
        hooks = [(await api.post("/api/webhooks/github", content=b"{}")).status_code for _ in "ab"]
        probes = [(await api.get("/healthz")).status_code for _ in "ab"]
        changes = [await cancel(api, {}) for _ in "ab"]

    assert 429 not in hooks and probes == [200, 200]
    assert changes == [404, 429]  # the local user is limited like any other


async def test_redis_down_is_a_503_that_names_no_secret(
    settings: Settings, jwks: Jwks, sessions: Sessions, env: WorkflowEnvironment, tmp_path: Path
) -> None:
    server = RedisServer(redis_binary(), tmp_path, password="s3cret-redis-pass").start()
    _, alice = signed_in()
    try:
        async with serve(limited(settings, jwks, server.url), env) as (_, api):
            before = await cancel(api, alice)
            server.stop()
            with structlog.testing.capture_logs() as logs:
                started = time.monotonic()
                down = await api.post("/api/builds/nosuchbuild/cancel", headers=alice)
                took = time.monotonic() - started
                read = (await api.get("/api/builds", headers=alice)).status_code
            server.start()  # the same port: the limiter reconnects by itself
            after = await cancel(api, alice)
    finally:
        server.stop()

    assert (before, down.status_code, read, after) == (404, 503, 200, 404)
    assert down.json()["detail"] == "the rate limiter is unavailable; try again"
    assert took < 3  # no backoff between tries: a client learns at once
    assert [line["event"] for line in logs].count("rate limiter unavailable") == 1
    assert "s3cret-redis-pass" not in down.text + repr(logs)


class Clock:
    """A clock the in-process limiter reads, moved by the test."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest_asyncio.fixture(params=["redis", "in-process"])
async def one_second(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[RateLimiter, Callable[[float], Awaitable[None]]]]:
    """A limiter of 2 requests a second, and how to let `seconds` pass for it."""
    if request.param == "in-process":
        clock = Clock()

        async def advance(seconds: float) -> None:
            clock.now += seconds

        yield InProcessLimiter(2, window=1.0, clock=clock), advance
        return
    limiter = RedisLimiter(request.getfixturevalue("redis_server").url, 2, window=1.0)

    async def sleep(seconds: float) -> None:
        await asyncio.sleep(seconds + 0.01)  # Redis's clock counts milliseconds

    yield limiter, sleep
    await limiter.aclose()


async def test_the_window_slides_and_a_refusal_does_not_extend_it(
    one_second: tuple[RateLimiter, Callable[[float], Awaitable[None]]],
) -> None:
    limiter, wait = one_second
    key = uuid.uuid4().hex
    assert [await limiter.hit(key), await limiter.hit(key)] == [0.0, 0.0]
    first = await limiter.hit(key)
    await wait(0.2)
    again = await limiter.hit(key)
    assert 0 < again < first <= 1.0  # the refusal left nothing: the oldest request still rules
    await wait(again)
    assert await limiter.hit(key) == 0.0


async def test_the_in_process_limiter_forgets_idle_users() -> None:
    clock = Clock()
    limiter = InProcessLimiter(1, window=60, clock=clock)
    await limiter.hit("idle")
    clock.now = 120
    await limiter.hit("busy")
    assert list(limiter._times) == ["busy"]


def production(**changes: Any) -> Settings:
    return Settings(  # type: ignore[call-arg]
        environment="production",
        anthropic_api_key=SecretStr("sk-test"),
        auth_mode="clerk",
        clerk_jwks_url=ISSUER,
        clerk_issuer=ISSUER,
        _env_file=None,
        **changes,
    )


def test_production_counts_a_limit_in_redis_only() -> None:
    with pytest.raises(ValidationError, match="REDIS_URL is required"):
        production(redis_url=None, rate_limit_per_minute=60)
    assert isinstance(open_limiter(production(redis_url="redis://r:6379/0")), RedisLimiter)
    assert open_limiter(production(redis_url=None, rate_limit_per_minute=0)) is None  # no limit
    development = Settings(redis_url=None, _env_file=None)  # type: ignore[call-arg]
    assert isinstance(open_limiter(development), InProcessLimiter)
