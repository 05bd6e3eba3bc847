"""GitHub's webhooks: the signature checked over the raw body, each delivery handled once.

A delivery is recorded in the transaction of its effect: a redelivered or replayed one finds its
record and changes nothing, and one whose handling failed is not recorded, so GitHub's retry
applies it. `installation` and `installation_repositories` keep the App's installations and
repositories; `pull_request` closed or merged updates the build's pull-request row; other events
are recorded and not acted on yet.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import Invalid, Unauthorized
from cofounder.db import (
    GitHubInstallation,
    GitHubRepository,
    Project,
    PullRequest,
    WebhookDelivery,
)
from cofounder.db.models import PR_CLOSED, PR_MERGED, utcnow
from cofounder.settings import Settings

log = structlog.get_logger()

SIGNATURE_PREFIX = "sha256="
Payload = dict[str, Any]


def verify(settings: Settings, body: bytes, signature: str | None) -> None:
    """Unauthorized unless `signature` is `sha256=` and the HMAC of `body` with the secret,
    compared in constant time."""
    if settings.github_webhook_secret is None:  # no signature can be right: none is checked
        raise Unauthorized("GitHub webhooks are not configured here (GITHUB_WEBHOOK_SECRET)")
    secret = settings.github_webhook_secret.get_secret_value().encode()
    expected = SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()
    if signature is None or not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Unauthorized("missing or bad X-Hub-Signature-256")


async def handle(session: AsyncSession, event: str, delivery_id: str, body: bytes) -> str:
    """Apply one verified delivery once; what happened: applied, ignored or duplicate."""
    payload = _payload(body)
    if await session.get(WebhookDelivery, ("github", delivery_id)) is not None:
        return "duplicate"
    handler = HANDLERS.get(event)
    if handler is not None:
        await handler(session, payload)
    session.add(WebhookDelivery(source="github", delivery_id=delivery_id, event=event))
    try:
        await session.commit()
    except IntegrityError:  # the same delivery, handled concurrently: that one stands
        await session.rollback()
        return "duplicate"
    log.info("github webhook", gh_event=event, delivery=delivery_id, applied=handler is not None)
    return "applied" if handler is not None else "ignored"


def _payload(body: bytes) -> Payload:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Invalid("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise Invalid("the body is not a JSON object")
    return payload


async def _installation(session: AsyncSession, payload: Payload) -> None:
    action, installation = payload.get("action"), _field(payload, "installation", dict)
    installation_id = _field(installation, "id", int)
    if action == "deleted":
        await _forget(session, installation_id)
        return
    account = _field(installation, "account", dict)
    row = await session.get(GitHubInstallation, installation_id) or GitHubInstallation(
        id=installation_id
    )
    row.account = _field(account, "login", str)
    row.account_type = str(account.get("type", "User"))
    row.suspended = action == "suspend" or (action != "unsuspend" and row.suspended is True)
    row.updated_at = utcnow()
    session.add(row)
    await session.flush()
    if action == "created":
        await _add(session, installation_id, payload.get("repositories") or [])


async def _installation_repositories(session: AsyncSession, payload: Payload) -> None:
    installation_id = _field(_field(payload, "installation", dict), "id", int)
    if await session.get(GitHubInstallation, installation_id) is None:
        await _installation(session, {**payload, "action": "created", "repositories": []})
    await _add(session, installation_id, payload.get("repositories_added") or [])
    removed = [_field(repo, "id", int) for repo in payload.get("repositories_removed") or []]
    if removed:
        await session.execute(delete(GitHubRepository).where(GitHubRepository.id.in_(removed)))


async def _add(session: AsyncSession, installation_id: int, repositories: list[Any]) -> None:
    for repo in repositories:
        repo_id = _field(repo, "id", int)
        row = await session.get(GitHubRepository, repo_id) or GitHubRepository(id=repo_id)
        row.installation_id = installation_id
        row.full_name = _field(repo, "full_name", str)
        session.add(row)


async def _forget(session: AsyncSession, installation_id: int) -> None:
    # Explicitly: SQLite enforces no ON DELETE CASCADE unless asked to.
    await session.execute(
        delete(GitHubRepository).where(GitHubRepository.installation_id == installation_id)
    )
    gone = delete(GitHubInstallation).where(GitHubInstallation.id == installation_id)
    await session.execute(gone)


def _field(payload: Any, name: str, kind: type) -> Any:
    value = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise Invalid(f"the payload has no {kind.__name__} {name!r}")
    return value


async def _pull_request(session: AsyncSession, payload: Payload) -> None:
    """A build's pull request closed or merged on GitHub: its row says so."""
    if payload.get("action") != "closed":
        return
    pull = _field(payload, "pull_request", dict)
    repository = _field(_field(payload, "repository", dict), "full_name", str)
    query = (
        select(PullRequest)
        .join(Project, Project.id == PullRequest.project_id)
        .where(PullRequest.provider == "github", PullRequest.number == _field(pull, "number", int))
        .where(func.lower(Project.repository) == repository.lower())
    )
    for row in (await session.scalars(query)).all():
        merged = pull.get("merged") is True
        row.state = PR_MERGED if merged else PR_CLOSED
        if merged:
            row.merged_at = utcnow()
            row.merge_commit_sha = pull.get("merge_commit_sha")


HANDLERS: dict[str, Callable[[AsyncSession, Payload], Awaitable[None]]] = {
    "installation": _installation,
    "installation_repositories": _installation_repositories,
    "pull_request": _pull_request,
}
