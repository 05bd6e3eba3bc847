"""Fixtures for code that talks to GitHub: a GitHub App's key pair and the local GitHub double.

def test_publish(github: InstalledApp) -> None:
    github.double.add_repository(f"{github.owner}/shop", github.installation_id, files=...)
    # point the code under test at github.api_url with github.app_id and github.private_key_pem
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cofounder.db import GitHubInstallation, GitHubRepository
from cofounder.offline_model import script
from tests.doubles.github import GitHubDouble

GITHUB_APP_ID = 424242
GITHUB_INSTALLATION_ID = 31337
GITHUB_OWNER = "acme"
# The App's webhook secret in the tests that deliver webhooks.
SECRET = "webhook-secret-for-tests"


@dataclass(frozen=True)
class AppKey:
    """A GitHub App's RSA key pair, both as PEM text."""

    private_key_pem: str
    public_key_pem: str


@dataclass(frozen=True)
class InstalledApp:
    """The App as the code under test knows it, and the double that plays GitHub for it."""

    double: GitHubDouble
    app_id: int
    private_key_pem: str
    installation_id: int
    owner: str

    @property
    def api_url(self) -> str:
        """For `GitHub(base_url=...)`: `http://127.0.0.1:PORT/api/v3/`."""
        return self.double.api_url

    @property
    def git_url(self) -> str:
        """Repositories clone from `{git_url}/{owner}/{name}.git`."""
        return self.double.git_url


def new_app_key() -> AppKey:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # GitHub hands out PKCS#1 keys
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return AppKey(private.decode(), public.decode())


@pytest.fixture(scope="session")
def github_app_key() -> AppKey:
    """One key pair for the session: generating RSA keys is the slow part."""
    return new_app_key()


@pytest.fixture
def github_double(tmp_path: Path, github_app_key: AppKey) -> Iterator[GitHubDouble]:
    """GitHub served locally for the App `GITHUB_APP_ID`, with no installations yet."""
    public_key = github_app_key.public_key_pem
    with GitHubDouble(tmp_path / "github", GITHUB_APP_ID, public_key) as double:
        yield double


@pytest.fixture
def github(github_double: GitHubDouble, github_app_key: AppKey) -> InstalledApp:
    """The App installed on the organisation `acme` (no repositories yet) and its credentials."""
    github_double.add_installation(GITHUB_INSTALLATION_ID, GITHUB_OWNER)
    return InstalledApp(
        double=github_double,
        app_id=GITHUB_APP_ID,
        private_key_pem=github_app_key.private_key_pem,
        installation_id=GITHUB_INSTALLATION_ID,
        owner=GITHUB_OWNER,
    )


async def deliver(
    hooks: httpx.AsyncClient,
    event: str,
    payload: dict[str, Any] | bytes,
    delivery: str | None = None,
    secret: str = SECRET,
    sign: bool = True,
) -> httpx.Response:
    """Post a GitHub webhook to the API, signed as GitHub signs them unless `sign` is False."""
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = {
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": "application/json",
    }
    if sign:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Hub-Signature-256"] = f"sha256={digest}"
    return await hooks.post("/api/webhooks/github", content=body, headers=headers)


async def slugkit_on_github(
    github: InstalledApp, sessions: Any, repository: str, goal: str = "slugs"
) -> None:
    """`repository` on the double with slugkit on main (as a merged first build leaves it), and
    what the App's installation webhook would have recorded of it."""
    files = {p: t.encode() for p, t in script.project_files(goal, fixed=True).items()}
    github.double.add_repository(repository, github.installation_id, files=files)
    async with sessions() as session:
        installation = GitHubInstallation(
            id=github.installation_id, account="acme", account_type="Organization", suspended=False
        )
        session.add(installation)
        await session.flush()
        session.add(
            GitHubRepository(id=7, installation_id=github.installation_id, full_name=repository)
        )
        await session.commit()
