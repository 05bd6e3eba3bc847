"""The settings' consistency checks: what a deployment refuses to start with, and why."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import AliasChoices, SecretStr

from cofounder.plans import PAID_TIERS

if TYPE_CHECKING:
    from cofounder.settings import Settings

# Values from examples and templates; a secret that is one of them is no secret.
PLACEHOLDERS = frozenset({"changethis", "changeme", "change-me", "placeholder", "secret", "todo"})


def check(settings: Settings) -> None:
    """Raise ValueError, naming the variable to fix, for settings that cannot work."""
    _auth(settings)
    _rate_limit(settings)
    _secrets(settings)
    _plans(settings)
    for role in ("architect", "coder", "debugger", "reviewer"):
        model = settings.model_for(role)  # type: ignore[arg-type]
        if model not in settings.model_prices:
            raise ValueError(f"COFOUNDER_MODEL_{role.upper()}={model!r} has no price")
    if settings.artifacts is not None and not settings.artifacts.startswith("s3://"):
        raise ValueError(
            f"COFOUNDER_ARTIFACTS must be s3://bucket[/prefix], not {settings.artifacts!r}"
        )
    if settings.sandbox == "e2b" and settings.e2b_api_key is None:
        raise ValueError("E2B_API_KEY is required when COFOUNDER_SANDBOX=e2b")
    if (settings.github_app_id is None) != (settings.github_private_key is None):
        raise ValueError("GITHUB_APP_ID and GITHUB_PRIVATE_KEY are set together, or neither")
    if settings.deployment_name is not None and not settings.build_id:
        raise ValueError("COFOUNDER_BUILD_ID is required with COFOUNDER_DEPLOYMENT_NAME")
    if not settings.worker_queues:
        raise ValueError("COFOUNDER_WORKER_QUEUES names no queue (workflows, models, sandbox)")
    if settings.environment == "production" and settings.anthropic_api_key is None:
        raise ValueError("ANTHROPIC_API_KEY is required when COFOUNDER_ENVIRONMENT=production")


def _auth(settings: Settings) -> None:
    if settings.environment == "production" and settings.auth_mode == "dev":
        raise ValueError(
            "COFOUNDER_AUTH=dev lets every caller act as the local user;"
            " COFOUNDER_ENVIRONMENT=production needs COFOUNDER_AUTH=clerk"
        )
    # Refused in development too: without them no token could ever be verified.
    keys = settings.clerk_jwks_url or settings.clerk_secret_key
    if settings.auth_mode == "clerk" and not (keys and settings.clerk_issuer):
        raise ValueError(
            "CLERK_ISSUER, and CLERK_JWKS_URL or CLERK_SECRET_KEY, are required when"
            " COFOUNDER_AUTH=clerk"
        )


def _rate_limit(settings: Settings) -> None:
    # Production runs more than one API instance; a count kept in one process is not theirs.
    if (
        settings.environment == "production"
        and settings.rate_limit_per_minute
        and not settings.redis_url
    ):
        raise ValueError(
            "REDIS_URL is required when COFOUNDER_ENVIRONMENT=production: every API instance"
            " counts COFOUNDER_RATE_LIMIT_PER_MINUTE there (0 turns the limit off)"
        )


def _secrets(settings: Settings) -> None:
    # An example value copied into production is as good as no secret at all.
    if settings.environment != "production":
        return
    for name, field in type(settings).model_fields.items():
        value = getattr(settings, name)
        if isinstance(value, SecretStr) and placeholder(value.get_secret_value()):
            alias = field.validation_alias
            shown = alias.choices[0] if isinstance(alias, AliasChoices) else f"COFOUNDER_{name}"
            raise ValueError(f"{str(shown).upper()} is a placeholder; set the real secret")


def placeholder(secret: str) -> bool:
    """True for an empty value, an example's word, a template's `<...>`, or `xxxx`."""
    value = secret.strip().lower()
    return (
        not value
        or value in PLACEHOLDERS
        or value.startswith(("<", "your-", "your_"))
        or set(value) == {"x"}
    )


def _plans(settings: Settings) -> None:
    for tier in (settings.default_tier, settings.local_tier, *PAID_TIERS):
        if tier not in settings.plans:
            raise ValueError(f"COFOUNDER_PLANS has no tier {tier!r}")
    for tier, limits in settings.plans.items():
        for model in limits.models or []:
            if model not in settings.model_prices:
                raise ValueError(f"plan {tier!r} allows {model!r}, which has no price")
    if settings.stripe_secret_key is not None and settings.stripe_webhook_secret is None:
        raise ValueError("STRIPE_WEBHOOK_SECRET is required with STRIPE_SECRET_KEY")
