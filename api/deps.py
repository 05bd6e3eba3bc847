"""Request dependencies: settings, a database session, the Temporal client, the artifact store,
project memory, the GitHub App and the caller."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from activities.billing.stripe_api import StripeBilling
from activities.github.app import GitHubApp
from api.auth import ClerkVerifier, provision, session_token
from api.errors import NotSignedIn
from cofounder.artifacts import ArtifactStore
from cofounder.memory import MemoryStore
from cofounder.payloads import LOCAL_OWNER
from cofounder.settings import Settings


@dataclass(frozen=True)
class User:
    """Who is calling; every query is scoped to `id` as the owner. Admins may also read
    every user's plan and usage (the admin routes)."""

    id: str
    admin: bool = False


# The dependencies that only read app state are coroutines: FastAPI runs a plain function in its
# thread pool, a thread hop per dependency per request.
async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request; whatever is not committed is rolled back on close."""
    async with request.app.state.sessions() as session:
        yield session


async def get_temporal(request: Request) -> Client:
    client: Client = request.app.state.temporal
    return client


async def get_artifacts(request: Request) -> ArtifactStore:
    """The whole store; a route reads only its caller's part (`for_owner`)."""
    store: ArtifactStore = request.app.state.artifacts
    return store


async def get_memory(request: Request) -> MemoryStore:
    """The whole memory store; a route reads only its caller's projects (`Scope`)."""
    memory: MemoryStore = request.app.state.memory
    return memory


async def get_github(request: Request) -> GitHubApp | None:
    """The GitHub App, or None when none is configured."""
    app: GitHubApp | None = request.app.state.github
    return app


async def get_stripe(request: Request) -> StripeBilling | None:
    """Stripe, or None when billing is not configured."""
    stripe: StripeBilling | None = request.app.state.stripe
    return stripe


async def get_current_user(request: Request) -> User:
    """The caller: the local user in dev auth mode, else the Clerk user its token proves."""
    verifier: ClerkVerifier | None = request.app.state.clerk
    if verifier is None:
        return User(id=LOCAL_OWNER, admin=True)  # the one local user runs the stack
    token = session_token(request)
    if token is None:
        raise NotSignedIn("sign in: no session token (Authorization: Bearer or __session cookie)")
    identity = await verifier.verify(token)
    settings: Settings = request.app.state.settings
    await provision(request.app.state.sessions, identity.id, settings.default_tier)
    return User(id=identity.id, admin=identity.admin)


SettingsDep = Annotated[Settings, Depends(get_settings)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
TemporalDep = Annotated[Client, Depends(get_temporal)]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
MemoryDep = Annotated[MemoryStore, Depends(get_memory)]
StripeDep = Annotated[StripeBilling | None, Depends(get_stripe)]
GitHubDep = Annotated[GitHubApp | None, Depends(get_github)]
CurrentUser = Annotated[User, Depends(get_current_user)]
