"""Clerk, played locally: a JWKS endpoint with the test's signing key, and session tokens signed
with it, for tests that sign in to the API as `COFOUNDER_AUTH=clerk` users."""

from __future__ import annotations

import json
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from cofounder.settings import Settings
from tests.conftest import ServerThread

ISSUER = "https://clerk.example.test"
ORIGIN = "https://app.example.test"
KNOWN_KID, STRANGER_KID = "key-known", "key-stranger"
SECRET_KEY = "sk_test_clerk_backend"


def _private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


KEYS = {KNOWN_KID: _private_key(), STRANGER_KID: _private_key()}


class Jwks:
    """Clerk's JWKS endpoint as a local server: the known key only; counts its fetches."""

    def __init__(self) -> None:
        self.fetches = 0
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(KEYS[KNOWN_KID].public_key()))
        self.body = {"keys": [{**public, "kid": KNOWN_KID, "use": "sig", "alg": "RS256"}]}
        routes = [
            Route("/.well-known/jwks.json", self._serve),
            Route("/v1/jwks", self._backend),  # Clerk's Backend API: the secret key required
        ]
        self.server = ServerThread(Starlette(routes=routes))

    async def _serve(self, _: Request) -> JSONResponse:
        self.fetches += 1
        return JSONResponse(self.body)

    async def _backend(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {SECRET_KEY}":
            return JSONResponse({"errors": [{"code": "authentication_invalid"}]}, 401)
        return await self._serve(request)

    @property
    def url(self) -> str:
        return f"{self.server.url}/.well-known/jwks.json"


def clerk_settings(settings: Settings, jwks: Jwks) -> Settings:
    """`settings` in clerk mode, trusting `jwks` and tokens from ORIGIN."""
    return settings.model_copy(
        update={
            "auth_mode": "clerk",
            "clerk_jwks_url": jwks.url,
            "clerk_issuer": ISSUER,
            "allowed_origins": [ORIGIN],
        }
    )


def claims(sub: str | None = "user_1", **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    made = {"iss": ISSUER, "sub": sub, "azp": ORIGIN, "iat": now, "nbf": now - 5, "exp": now + 60}
    made.update(changes)
    return {name: value for name, value in made.items() if value is not None}


def token(kid: str = KNOWN_KID, **changes: Any) -> str:
    return jwt.encode(claims(**changes), KEYS[kid], algorithm="RS256", headers={"kid": kid})


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}
