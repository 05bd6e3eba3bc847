"""A GitHub App's credentials: its JWT exchanged for installation tokens, each cached for its
installation until shortly before it expires, and a client made per use, never shared.

A token travels only in an `Authorization` header: of githubkit's requests, and of git's through
its environment (`http.extraHeader`), never in a URL, a command line, a log line or an error.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from pydantic import SecretStr

from activities.errors import NotAuthorized
from activities.github.errors import github_errors
from cofounder.settings import Settings

# A cached token is exchanged for a new one this long before it expires, so no call that starts
# with it can outlive it.
REFRESH_BEFORE = timedelta(minutes=5)

Auth = TypeVar("Auth", AppAuthStrategy, TokenAuthStrategy)


@dataclass(frozen=True)
class InstallationToken:
    token: str = field(repr=False)
    expires_at: datetime


def github_app(settings: Settings) -> GitHubApp | None:
    """The GitHub App when one is configured; linked projects need it, the others do not."""
    if settings.github_app_id is None or settings.github_private_key is None:
        return None
    return GitHubApp(settings.github_app_id, settings.github_private_key, settings.github_api_url)


def linked(app: GitHubApp | None) -> GitHubApp:
    """The App, for a project linked to a GitHub repository; NotAuthorized when this worker has
    none configured."""
    if app is None:
        raise NotAuthorized("the project links a GitHub repository, but no GitHub App is set")
    return app


class GitHubApp:
    """One GitHub App: its installations' tokens, and clients acting as an installation."""

    def __init__(
        self,
        app_id: int,
        private_key: SecretStr,
        api_url: str,
        *,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.app_id = app_id
        self._private_key = private_key
        self.api_url = api_url.rstrip("/") + "/"
        self._now = now
        self._tokens: dict[int, InstallationToken] = {}
        # githubkit's default cache is one per process, keyed by App id alone: another key for
        # the same id would be served this one's JWT. Each App keeps its own.
        self._cache = MemCacheStrategy()
        self._locks: dict[int, asyncio.Lock] = {}

    async def token(self, installation_id: int) -> str:
        """A token of `installation_id` valid for at least REFRESH_BEFORE."""
        lock = self._locks.setdefault(installation_id, asyncio.Lock())
        async with lock:  # one exchange at a time per installation, however many ask
            cached = self._tokens.get(installation_id)
            if cached is None or cached.expires_at - REFRESH_BEFORE <= self._now():
                cached = await self._exchange(installation_id)
                self._tokens[installation_id] = cached
            return cached.token

    async def client(self, installation_id: int) -> GitHub[TokenAuthStrategy]:
        """A client acting as the installation; the caller closes it (`async with`)."""
        return self._github(TokenAuthStrategy(await self.token(installation_id)))

    async def git_env(self, installation_id: int) -> dict[str, str]:
        """What git's environment needs to fetch and push as the installation."""
        credential = f"x-access-token:{await self.token(installation_id)}".encode()
        header = f"Authorization: Basic {base64.b64encode(credential).decode()}"
        return {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": header,
        }

    async def _exchange(self, installation_id: int) -> InstallationToken:
        strategy = AppAuthStrategy(str(self.app_id), self._private_key.get_secret_value())
        async with (
            self._github(strategy) as github,
            github_errors(f"exchanging the App's JWT for installation {installation_id}'s token"),
        ):
            response = await github.rest.apps.async_create_installation_access_token(
                installation_id
            )
        issued = response.parsed_data
        # An ISO 8601 time in UTC, e.g. 2026-11-25T23:00:00Z.
        expires_at = datetime.fromisoformat(issued.expires_at)
        return InstallationToken(token=issued.token, expires_at=expires_at)

    def _github(self, auth: Auth) -> GitHub[Auth]:
        # Temporal retries, so githubkit does not; answers are never served from a cache.
        return GitHub(
            auth,
            base_url=self.api_url,
            http_cache=False,
            auto_retry=False,
            cache_strategy=self._cache,
        )
