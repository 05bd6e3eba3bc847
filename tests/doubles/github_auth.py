"""How the GitHub double tells who is calling: the App's JWT, or an installation token.

GitHub's rules for the App JWT: signed RS256 with the App's private key, `iss` the App id,
`iat` and `exp` present, and `exp` at most ten minutes after `iat`.
"""

from __future__ import annotations

import base64
import binascii
from datetime import timedelta

import jwt

MAX_JWT_LIFETIME = timedelta(minutes=10)
CLOCK_SKEW = timedelta(seconds=60)


class AppJwt:
    """Checks App JWTs against the App's id and public key."""

    def __init__(self, app_id: int, public_key_pem: str) -> None:
        self.app_id = app_id
        self.public_key = public_key_pem

    def problem(self, authorization: str) -> str | None:
        """Why the `Authorization` header is not a valid JWT of the App; None when it is."""
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential:
            return "A JSON web token could not be decoded"
        try:
            claims = jwt.decode(
                credential,
                self.public_key,
                algorithms=["RS256"],
                leeway=CLOCK_SKEW,
                options={"require": ["iat", "exp", "iss"]},
            )
        except jwt.ExpiredSignatureError:
            return "'Expiration time' claim ('exp') must be a time in the future"
        except jwt.ImmatureSignatureError:
            return "'Issued at' claim ('iat') must be an Integer representing a time in the past"
        except jwt.InvalidTokenError:
            return "A JSON web token could not be decoded"
        if str(claims["iss"]) != str(self.app_id):
            return "'Issuer' claim ('iss') must be the App's id"
        if claims["exp"] - claims["iat"] > (MAX_JWT_LIFETIME + CLOCK_SKEW).total_seconds():
            return "'Expiration time' claim ('exp') is too far in the future"
        return None


def token_of(authorization: str) -> str | None:
    """The token in an `Authorization` header: `token T`, `Bearer T`, or Basic auth with the
    token as password (what git sends as `x-access-token:T`)."""
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() in ("token", "bearer"):
        return credential or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credential, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None
