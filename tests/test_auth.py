"""Sign-in: Clerk session tokens checked against a JWKS served locally, through the real API."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from fastapi import FastAPI
from pydantic import SecretStr, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.auth import ClerkVerifier, provision
from api.main import create_app
from cofounder.db import Build, Project, UserAccount, make_engine, make_sessionmaker
from cofounder.settings import Settings
from tests.clerk_tokens import (
    ISSUER,
    KEYS,
    KNOWN_KID,
    ORIGIN,
    SECRET_KEY,
    STRANGER_KID,
    Jwks,
    bearer,
    claims,
    clerk_settings,
    token,
)
from tests.helpers import count, insert_build


@dataclass
class Api:
    client: httpx.AsyncClient
    app: FastAPI
    jwks: Jwks


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    endpoint = Jwks()
    with endpoint.server:
        yield endpoint


@pytest_asyncio.fixture
async def api(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    env: WorkflowEnvironment,
    jwks: Jwks,
) -> AsyncIterator[Api]:
    """The API in clerk mode, in-process, against the local JWKS."""
    served = create_app(clerk_settings(settings, jwks), client=env.client)
    async with served.router.lifespan_context(served):
        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield Api(client, served, jwks)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256_with_public_key() -> str:
    """The algorithm-confusion attack: HMAC keyed with the RSA public key's PEM. Made by hand,
    since PyJWT itself refuses to use a PEM as an HMAC secret."""
    pem = (
        KEYS[KNOWN_KID]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": KNOWN_KID}).encode())
    payload = _b64(json.dumps(claims()).encode())
    signature = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


async def refused(api: Api, value: str, reason: str) -> None:
    answer = await api.client.get("/api/builds", headers=bearer(value))
    assert answer.status_code == 401, answer.text
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert reason in answer.json()["detail"]


async def test_a_good_token_signs_in_and_provisions_the_user_once(
    api: Api, sessions: async_sessionmaker[AsyncSession]
) -> None:
    by_header = await api.client.get("/api/builds", headers=bearer(token()))
    by_cookie = await api.client.get("/api/builds", headers={"Cookie": f"__session={token()}"})
    assert (by_header.status_code, by_cookie.status_code) == (200, 200)
    assert by_header.json() == {"builds": []}  # the local user's builds are not this user's
    assert await count(sessions, UserAccount, id="user_1") == 1
    assert await count(sessions, UserAccount) == 1


async def test_no_token_is_refused(api: Api) -> None:
    answer = await api.client.get("/api/builds")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Bearer"
    assert "no session token" in answer.json()["detail"]


async def test_unsigned_and_hmac_tokens_are_refused(api: Api) -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": KNOWN_KID})
    await refused(api, unsigned, "RS256")
    await refused(api, hs256_with_public_key(), "RS256")


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"iss": "https://clerk.evil.test"}, "another issuer"),
        ({"iss": ISSUER + "/"}, "another issuer"),  # exact, not a prefix
        ({"azp": "https://evil.test"}, "origin not allowed"),
        ({"exp": -10}, "expired"),  # seconds from now, taken when the test runs
        ({"nbf": 60}, "not valid yet"),
        ({"sub": None}, "no sub"),
    ],
)
async def test_bad_claims_are_refused(api: Api, changes: dict[str, Any], reason: str) -> None:
    now = int(time.time())
    timed = {name: now + changes[name] for name in ("exp", "nbf") if name in changes}
    await refused(api, token(**{**changes, **timed}), reason)


async def test_skew_within_the_leeway_is_accepted(api: Api) -> None:
    now = int(time.time())
    skewed = token(nbf=now + 3, exp=now - 3)
    assert (await api.client.get("/api/builds", headers=bearer(skewed))).status_code == 200


async def test_an_unknown_key_refetches_the_jwks_once_then_refuses(api: Api) -> None:
    # PyJWT refetches for an unknown kid only after its cooldown; none here, to see the refetch.
    verifier = ClerkVerifier(api.jwks.url, ISSUER, [ORIGIN], refetch_cooldown=0)
    api.app.state.clerk = verifier
    assert (await api.client.get("/api/builds", headers=bearer(token()))).status_code == 200
    before = api.jwks.fetches
    await refused(api, token(kid=STRANGER_KID), "unknown key")
    assert api.jwks.fetches == before + 1
    assert (await api.client.get("/api/builds", headers=bearer(token()))).status_code == 200
    assert api.jwks.fetches == before + 1  # the known key comes from the cache


async def test_an_unknown_key_within_the_cooldown_does_not_refetch(api: Api) -> None:
    assert api.jwks.fetches == 1  # the app's start-up
    await refused(api, token(kid=STRANGER_KID), "unknown key")
    assert api.jwks.fetches == 1


async def test_another_users_build_is_not_found(
    api: Api, sessions: async_sessionmaker[AsyncSession]
) -> None:
    build_id = uuid.uuid4().hex[:16]
    async with sessions() as session:
        project = Project(owner="user_a", slug="demo")
        session.add(project)
        await session.flush()
        row = {"project_id": project.id, "owner": "user_a", "status": "queued"}
        session.add(Build(id=build_id, goal="A's build", workflow_id=f"build-{build_id}", **row))
        await session.commit()
    as_b = bearer(token(sub="user_b"))
    for path in ("", "/plan", "/pull-request"):
        answer = await api.client.get(f"/api/builds/{build_id}{path}", headers=as_b)
        assert answer.status_code == 404, path
    for path in ("/api/admin/users", "/api/admin/users/user_a/usage"):
        assert (await api.client.get(path, headers=as_b)).status_code == 404, path
    theirs = (await api.client.get("/api/billing/usage", headers=as_b)).json()
    assert theirs["projects"] == [] and theirs["plan"]["tier"] == "unlimited"  # the tests' default
    mine = await api.client.get("/api/builds", headers=bearer(token(sub="user_a")))
    assert [build["id"] for build in mine.json()["builds"]] == [build_id]


async def test_the_role_claim_makes_an_admin(api: Api) -> None:
    admin = bearer(token(sub="user_ops", role="admin"))
    await api.client.get("/api/builds", headers=bearer(token(sub="user_a")))  # provisioned
    users = await api.client.get("/api/admin/users", headers=admin)
    assert users.status_code == 200 and "user_a" in {u["id"] for u in users.json()["users"]}
    others = bearer(token(sub="user_a", role="member"))
    assert (await api.client.get("/api/admin/users", headers=others)).status_code == 404


async def test_dev_mode_acts_as_the_local_user(
    http: httpx.AsyncClient, sessions: async_sessionmaker[AsyncSession]
) -> None:
    build_id = await insert_build(sessions)  # owned by the local user
    answer = await http.get("/api/builds", headers=bearer("not even a token"))
    assert [build["id"] for build in answer.json()["builds"]] == [build_id]
    assert await count(sessions, UserAccount) == 0


def test_production_refuses_dev_mode_and_half_configured_clerk() -> None:
    production = {"environment": "production", "anthropic_api_key": SecretStr("sk-test")}
    with pytest.raises(ValidationError, match="COFOUNDER_AUTH=dev"):
        Settings(**production, auth_mode="dev", _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="CLERK_ISSUER"):
        Settings(  # type: ignore[call-arg]
            **production, auth_mode="clerk", clerk_jwks_url=ISSUER, _env_file=None
        )
    clerk = {"auth_mode": "clerk", "clerk_jwks_url": ISSUER, "clerk_issuer": ISSUER}
    Settings(**production, **clerk, rate_limit_per_minute=0, _env_file=None)  # type: ignore[call-arg]


def test_allowed_origins_read_as_a_list_or_comma_separated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COFOUNDER_ALLOWED_ORIGINS", f"{ORIGIN}, https://b.test")
    assert Settings(_env_file=None).allowed_origins == [ORIGIN, "https://b.test"]  # type: ignore[call-arg]
    monkeypatch.setenv("COFOUNDER_ALLOWED_ORIGINS", json.dumps([ORIGIN]))
    assert Settings(_env_file=None).allowed_origins == [ORIGIN]  # type: ignore[call-arg]


async def test_cors_allows_the_configured_origin_with_credentials(api: Api) -> None:
    preflight = {"Origin": ORIGIN, "Access-Control-Request-Method": "GET"}
    answer = await api.client.options("/api/builds", headers=preflight)
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert answer.headers["access-control-allow-credentials"] == "true"
    other = await api.client.options(
        "/api/builds", headers={**preflight, "Origin": "https://x.test"}
    )
    assert "access-control-allow-origin" not in other.headers


async def test_first_requests_at_once_make_one_user_row(db_url: str) -> None:
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    try:
        await asyncio.gather(*(provision(sessions, "user_1") for _ in range(5)))
        assert await count(sessions, UserAccount, id="user_1") == 1
    finally:
        await engine.dispose()


async def test_the_secret_key_fetches_the_keys_from_clerks_backend_api(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    env: WorkflowEnvironment,
    jwks: Jwks,
) -> None:
    backend = {"clerk_jwks_url": None, "clerk_api_url": jwks.server.url}
    for secret, status in ((SECRET_KEY, 200), ("sk_test_wrong", 503)):
        tuned = clerk_settings(settings, jwks).model_copy(
            update={**backend, "clerk_secret_key": SecretStr(secret)}
        )
        app = create_app(tuned, client=env.client)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                answer = await client.get("/api/builds", headers=bearer(token()))
        assert answer.status_code == status, answer.text
        assert secret not in answer.text
