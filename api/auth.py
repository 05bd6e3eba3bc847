"""Who is calling: Clerk session tokens, verified against the keys Clerk publishes (JWKS)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt
import structlog
from fastapi import Request
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.errors import NotSignedIn, Unavailable
from cofounder.db import UserAccount, insert_for
from cofounder.db.models import as_utc, utcnow
from cofounder.payloads import LOCAL_OWNER
from cofounder.settings import Settings

log = structlog.get_logger()

SESSION_COOKIE = "__session"  # where Clerk's browser SDK keeps the session token
ALGORITHMS = ["RS256"]  # Clerk signs with RS256 only; `none` and HS256 are refused by name
LEEWAY_SECONDS = 5  # clock skew tolerated on `exp` and `nbf`
REQUIRED_CLAIMS = ["exp", "nbf", "iss", "sub"]
JWKS_CACHE_SECONDS = 300
JWKS_TIMEOUT_SECONDS = 10
# An unknown `kid` refetches the JWKS at most this often (PyJWT's default), so tokens with made-up
# key ids cannot turn each request into a request to Clerk.
JWKS_REFETCH_COOLDOWN_SECONDS = 30.0
# Admins carry this claim, added to the session token in Clerk's dashboard (Sessions →
# Customize session token: {"role": "{{user.public_metadata.role}}"}).
ADMIN_CLAIM, ADMIN_ROLE = "role", "admin"
# `last_seen_at` is written at most this often per user, not on every request.
SEEN_EVERY = timedelta(minutes=5)


@dataclass(frozen=True)
class Identity:
    """Who a session token proves: the user id (`sub`) and whether they are an admin."""

    id: str
    admin: bool = False


class ClerkVerifier:
    """Verifies a Clerk session token and answers its user id (`sub`); one per app."""

    def __init__(
        self,
        jwks_url: str,
        issuer: str,
        allowed_origins: list[str],
        *,
        refetch_cooldown: float = JWKS_REFETCH_COOLDOWN_SECONDS,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.issuer = issuer
        self.allowed_origins = frozenset(allowed_origins)
        self.keys = jwt.PyJWKClient(
            jwks_url,
            headers=headers,
            cache_keys=True,
            lifespan=JWKS_CACHE_SECONDS,
            timeout=JWKS_TIMEOUT_SECONDS,
            cooldown_duration=refetch_cooldown,
        )

    async def warm_up(self) -> None:
        """Fetch the keys once at start-up; if Clerk is unreachable, the first request retries."""
        try:
            await asyncio.to_thread(self.keys.get_signing_keys)
        except jwt.PyJWKClientError as err:
            log.warning("clerk keys not fetched at start-up", error=str(err))

    async def verify(self, token: str) -> Identity:
        """Who the token proves; NotSignedIn (401) for any token we would not accept."""
        # The JWKS fetch is blocking urllib; the thread keeps it off the event loop.
        return await asyncio.to_thread(self._verify, token)

    def _verify(self, token: str) -> Identity:
        key = self._signing_key(token)
        claims = _decode(token, key, self.issuer)
        # PyJWT checks `iss` too; compared here again so the rule is visible where it matters.
        if claims["iss"] != self.issuer:
            raise NotSignedIn("session token from another issuer")
        azp = claims.get("azp")
        if azp is not None and azp not in self.allowed_origins:
            raise NotSignedIn("session token made for an origin not allowed here")
        sub = claims["sub"]
        if not isinstance(sub, str) or not 0 < len(sub) <= 64:
            raise NotSignedIn("session token has no usable subject")
        return Identity(id=sub, admin=claims.get(ADMIN_CLAIM) == ADMIN_ROLE)

    def _signing_key(self, token: str) -> Any:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise NotSignedIn("malformed session token") from None
        # Refused before any key lookup, so junk tokens never make us refetch the JWKS.
        if header.get("alg") not in ALGORITHMS:
            raise NotSignedIn("session token must be signed with RS256")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise NotSignedIn("session token has no key id")
        try:
            return self.keys.get_signing_key(kid).key
        except jwt.PyJWKClientConnectionError:
            raise Unavailable("the sign-in keys cannot be fetched; try again") from None
        except jwt.PyJWKClientError:
            raise NotSignedIn("session token signed by an unknown key") from None


def _decode(token: str, key: Any, issuer: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=ALGORITHMS,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise NotSignedIn("session token expired") from None
    except jwt.ImmatureSignatureError:
        raise NotSignedIn("session token not valid yet") from None
    except jwt.InvalidIssuerError:
        raise NotSignedIn("session token from another issuer") from None
    except jwt.MissingRequiredClaimError as err:
        raise NotSignedIn(f"session token has no {err.claim}") from None
    except jwt.InvalidTokenError:
        raise NotSignedIn("invalid session token") from None
    return claims


async def clerk_verifier(settings: Settings) -> ClerkVerifier | None:
    """The app's verifier in clerk mode; None in dev mode, where everyone is the local user."""
    if settings.auth_mode == "dev":
        log.warning("auth mode dev: every request acts as the local user", user=LOCAL_OWNER)
        return None
    assert settings.clerk_issuer  # the settings refuse otherwise
    url, headers = settings.clerk_jwks_url, None
    if url is None:  # Clerk's Backend API serves the same keys to the secret key's holder
        assert settings.clerk_secret_key is not None
        url = f"{settings.clerk_api_url.rstrip('/')}/v1/jwks"
        headers = {"Authorization": f"Bearer {settings.clerk_secret_key.get_secret_value()}"}
    verifier = ClerkVerifier(url, settings.clerk_issuer, settings.allowed_origins, headers=headers)
    await verifier.warm_up()
    return verifier


def session_token(request: Request) -> str | None:
    """The bearer token, else the `__session` cookie; never logged."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.cookies.get(SESSION_COOKIE) or None


async def provision(
    sessions: async_sessionmaker[AsyncSession], user_id: str, tier: str = "free"
) -> None:
    """The user's row (on `tier`), made the first time they are seen; concurrent first
    requests are safe."""
    now = utcnow()
    async with sessions() as session:
        query = select(UserAccount.last_seen_at).where(UserAccount.id == user_id)
        seen = await session.scalar(query)
        if seen is None:
            row = {"id": user_id, "created_at": now, "last_seen_at": now, "tier": tier}
            statement = insert_for(session)(UserAccount).values(**row)
            await session.execute(statement.on_conflict_do_nothing(index_elements=["id"]))
        elif now - as_utc(seen) >= SEEN_EVERY:
            stale = update(UserAccount).where(UserAccount.id == user_id)
            await session.execute(stale.values(last_seen_at=now))
        else:
            return
        await session.commit()
