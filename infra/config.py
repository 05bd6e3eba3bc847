"""What one deployment is, read from the CDK context (`cdk deploy -c image_tag=...`) and
checked before any stack is built, so a bad value fails the synth with its name."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, cast, get_args

from infra.names import TEMPORAL_SECRETS, TemporalAuth, secret_names

REQUIRED = ("image_tag", "github_repo", "temporal_address", "temporal_auth")
# An image tag (a git sha) that is also a valid ECS service and task family name part.
BUILD_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
GITHUB_REPO = re.compile(r"[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+")
ALL_SECRETS = frozenset(secret_names("api_key")) | {
    name for names in TEMPORAL_SECRETS.values() for name in names
}


@dataclass(frozen=True)
class Config:
    """The context of one synth: which image runs, which worker versions stay up, who may
    deploy, and how the processes reach Temporal."""

    image_tag: str
    worker_versions: tuple[str, ...]
    github_repo: str
    temporal_address: str
    temporal_namespace: str
    temporal_auth: TemporalAuth
    # Optional: HTTPS on the load balancer (an ACM certificate), an OIDC provider the account
    # already has (there can be one per URL), an address for the alarms' notifications.
    certificate_arn: str | None = None
    oidc_provider_arn: str | None = None
    alarm_email: str | None = None
    # Plain (non-secret) settings for every container: GITHUB_APP_ID, CLERK_ISSUER, ...
    settings: Mapping[str, str] = field(default_factory=dict)
    account: str | None = None
    region: str | None = None


def from_context(get: Callable[[str], Any]) -> Config:
    """The deployment the context describes; ValueError names what is missing or wrong."""
    missing = [key for key in REQUIRED if not get(key)]
    if missing:
        raise ValueError(f"missing context: {', '.join(missing)} (cdk ... -c KEY=VALUE)")
    image_tag = str(get("image_tag"))
    versions = tuple(v.strip() for v in str(get("worker_versions") or image_tag).split(","))
    return Config(
        image_tag=_build_id(image_tag),
        worker_versions=_worker_versions(image_tag, versions),
        github_repo=_github_repo(str(get("github_repo"))),
        temporal_address=str(get("temporal_address")),
        temporal_namespace=str(get("temporal_namespace") or "default"),
        temporal_auth=_temporal_auth(str(get("temporal_auth"))),
        certificate_arn=get("certificate_arn") or None,
        oidc_provider_arn=get("oidc_provider_arn") or None,
        alarm_email=get("alarm_email") or None,
        settings=_settings(get("settings")),
        # Not the CLI's CDK_DEFAULT_*: without them the stacks stay environment-agnostic
        # (zones by Fn::GetAZs), so a synth needs no lookups and writes no cdk.context.json.
        account=get("account") or None,
        region=get("region") or None,
    )


def _build_id(value: str) -> str:
    if not BUILD_ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a build id (letters, digits, - and _; 63 at most)")
    return value


def _worker_versions(image_tag: str, versions: tuple[str, ...]) -> tuple[str, ...]:
    # The new version's workers must run before it is made current (set-current).
    if image_tag not in versions:
        raise ValueError(f"worker_versions must include image_tag {image_tag!r}")
    if len(set(versions)) != len(versions):
        raise ValueError(f"worker_versions repeats a build id: {','.join(versions)}")
    return tuple(_build_id(version) for version in versions)


def _github_repo(value: str) -> str:
    if not GITHUB_REPO.fullmatch(value):
        raise ValueError(f"github_repo must be OWNER/NAME, not {value!r}")
    return value


def _temporal_auth(value: str) -> TemporalAuth:
    if value not in get_args(TemporalAuth):
        raise ValueError(f"temporal_auth must be api_key, mtls or none, not {value!r}")
    return cast(TemporalAuth, value)


def _settings(value: Any) -> dict[str, str]:
    """A JSON object (a string from the command line); a secret in it is refused, since it
    would land in the template and the task definition in plain text."""
    if not value:
        return {}
    parsed = json.loads(value) if isinstance(value, str) else value
    if not isinstance(parsed, dict):
        raise ValueError("settings must be a JSON object of plain settings")
    secrets = sorted(ALL_SECRETS & parsed.keys())
    if secrets:
        raise ValueError(f"settings may not hold secrets: {', '.join(secrets)}")
    return {str(key): str(val) for key, val in parsed.items()}
