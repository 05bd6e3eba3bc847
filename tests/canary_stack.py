"""The whole stack with a canary value in every secret it uses, for tests/test_canary.py.

The API (Clerk sign-in through Clerk's Backend API with its secret key, Stripe billing, the
GitHub App) and a worker (the model, E2B sandboxes, GitHub publishing) run in this process
against the local doubles, each double checking its canary as the vendor checks a key. Every
log line of both is captured as production writes it.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pydantic import SecretStr
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from cofounder.settings import Settings
from tests import clerk_tokens
from tests.clerk_tokens import ISSUER, ORIGIN, Jwks, bearer, claims
from tests.doubles import e2b_process
from tests.doubles.e2b import E2BDouble
from tests.doubles.stripe import StripeDouble
from tests.github_fixtures import InstalledApp, slugkit_on_github
from tests.log_capture import CapturedLogs, json_logs
from tests.stripe_setup import PLAN_PRICE, USAGE_PRICE
from worker import running_worker

REPOSITORY = "acme/slugs"


def new_canaries(github_private_key: str) -> dict[str, str]:
    """A unique value per secret setting; none has a vendor's shape, so only its registration
    as a configured secret can keep it out of the logs."""
    made = {
        name: f"canary{secrets.token_hex(12)}"
        for name in (
            "anthropic_api_key",
            "e2b_api_key",
            "stripe_secret_key",
            "stripe_webhook_secret",
            "github_webhook_secret",
            "clerk_secret_key",
        )
    }
    return made | {"github_private_key": github_private_key}


@dataclass
class CanaryStack:
    """The running stack, its doubles, the canaries and what was captured."""

    settings: Settings
    canaries: dict[str, str]
    http: httpx.AsyncClient
    logs: CapturedLogs
    github: InstalledApp
    e2b: E2BDouble
    stripe: StripeDouble
    jwks: Jwks
    # Every command the E2B double ran for the build: its environment and its argv.
    sandbox_commands: list[dict[str, str]] = field(default_factory=list)


def canary_settings(
    settings: Settings, canaries: dict[str, str], doubles: dict[str, Any]
) -> Settings:
    """`settings` pointed at every double, each secret a canary."""
    github: InstalledApp = doubles["github"]
    return settings.model_copy(
        update={name: SecretStr(value) for name, value in canaries.items()}
        | {
            "auth_mode": "clerk",
            "clerk_issuer": ISSUER,
            "clerk_api_url": doubles["jwks"].server.url,  # the keys come with the secret key
            "allowed_origins": [ORIGIN],
            "sandbox": "e2b",
            "github_app_id": github.app_id,
            "github_api_url": github.api_url,
            "stripe_api_base": doubles["stripe"].url,
            "stripe_price_partner_monthly": PLAN_PRICE,
            "stripe_price_usage": USAGE_PRICE,
        }
    )


@pytest.fixture
def canary_doubles(
    tmp_path: Path, github: InstalledApp, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dict[str, str], dict[str, Any]]]:
    """The doubles of E2B, Stripe and Clerk, each expecting its canary; GitHub's knows the App."""
    canaries = new_canaries(github.private_key_pem)
    monkeypatch.setattr(clerk_tokens, "SECRET_KEY", canaries["clerk_secret_key"])
    jwks = Jwks()
    with (
        jwks.server,
        E2BDouble(tmp_path / "e2b", api_key=canaries["e2b_api_key"]) as e2b,
        StripeDouble(api_key=canaries["stripe_secret_key"]) as stripe,
    ):
        stripe.add_price(PLAN_PRICE)
        stripe.add_price(USAGE_PRICE, usage_type="metered")
        for name, value in e2b.env().items():
            monkeypatch.setenv(name, value)
        # The double's "template" is this machine: this Python, with pytest.
        monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:{os.environ['PATH']}")
        yield canaries, {"github": github, "jwks": jwks, "e2b": e2b, "stripe": stripe}


def _record_commands(monkeypatch: pytest.MonkeyPatch, seen: list[dict[str, str]]) -> None:
    """Keep the environment and argv of every command the E2B double runs."""
    made = e2b_process.command_env

    def recording(sandbox: Any, config: Any) -> dict[str, str]:
        env = made(sandbox, config)
        seen.append({**env, "argv": " ".join(config.args)})
        return env

    monkeypatch.setattr(e2b_process, "command_env", recording)


@pytest_asyncio.fixture
async def canary_stack(
    settings: Settings,
    sessions: Any,
    env: WorkflowEnvironment,
    canary_doubles: tuple[dict[str, str], dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[CanaryStack]:
    """The API and a worker on canary settings, with the repository linked doubles-side."""
    canaries, doubles = canary_doubles
    configured = canary_settings(settings, canaries, doubles)
    await slugkit_on_github(doubles["github"], sessions, REPOSITORY, "slugs")
    with json_logs() as logs:
        app = create_app(configured, client=env.client)
        async with app.router.lifespan_context(app), running_worker(env.client, configured):
            transport = httpx.ASGITransport(app=app)
            signed_in = bearer(clerk_tokens.token(exp=claims()["iat"] + 3600))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://api", headers=signed_in
            ) as http:
                stack = CanaryStack(configured, canaries, http, logs, **doubles)
                _record_commands(monkeypatch, stack.sandbox_commands)
                yield stack
