"""GitHub's webhooks: the signature checked over the raw body, each delivery handled once.

A delivery is recorded in the transaction of its effect: a redelivered or replayed one finds its
record and changes nothing, and one whose handling failed is not recorded, so GitHub's retry
applies it. A signal to a build is sent before that transaction commits: if the commit fails,
the retry sends the same feedback id again, which the workflow drops as a repeat.

`installation` and `installation_repositories` keep the App's installations and repositories;
`pull_request` closed or merged updates the build's pull-request row and ends its review
session; comments, reviews and (when asked to) failing check suites on a build's pull request
are feedback to it (api/github_feedback.py reads them). Other events are recorded only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api import github_feedback
from api.controls import send_closed, send_feedback
from api.errors import Invalid, Unauthorized
from api.github_feedback import Asked, Payload, field, part, repository_of
from cofounder import build_log
from cofounder.db import (
    Build,
    GitHubInstallation,
    GitHubRepository,
    Project,
    PullRequest,
    WebhookDelivery,
)
from cofounder.db.models import PR_CLOSED, PR_MERGED, PR_OPEN, utcnow
from cofounder.payloads import PullRequestClosed
from cofounder.settings import Settings

log = structlog.get_logger()

SIGNATURE_PREFIX = "sha256="


@dataclass(frozen=True)
class Context:
    """What a delivery is handled with: the transaction its record joins, Temporal (to signal
    builds before that transaction commits) and the settings."""

    session: AsyncSession
    client: Client
    settings: Settings


# A handler applies one event; True when it changed a row or signalled a build.
Handler = Callable[[Context, Payload], Awaitable[bool]]


def verify(settings: Settings, body: bytes, signature: str | None) -> None:
    """Unauthorized unless `signature` is `sha256=` and the HMAC of `body` with the secret,
    compared in constant time."""
    if settings.github_webhook_secret is None:  # no signature can be right: none is checked
        raise Unauthorized("GitHub webhooks are not configured here (GITHUB_WEBHOOK_SECRET)")
    secret = settings.github_webhook_secret.get_secret_value().encode()
    expected = SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()
    if signature is None or not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Unauthorized("missing or bad X-Hub-Signature-256")


async def handle(context: Context, event: str, delivery_id: str, body: bytes) -> str:
    """Apply one verified delivery once; what happened: applied, ignored or duplicate.
    Unavailable (nothing recorded, so GitHub retries) when a build could not be signalled."""
    payload = _payload(body)
    session = context.session
    if await session.get(WebhookDelivery, ("github", delivery_id)) is not None:
        return "duplicate"
    handler = HANDLERS.get(event)
    applied = handler is not None and await handler(context, payload)
    session.add(WebhookDelivery(source="github", delivery_id=delivery_id, event=event))
    try:
        await session.commit()
    except IntegrityError:  # the same delivery, handled concurrently: that one stands
        await session.rollback()
        return "duplicate"
    log.info("github webhook", gh_event=event, delivery=delivery_id, applied=applied)
    return "applied" if applied else "ignored"


def _payload(body: bytes) -> Payload:
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Invalid("the body is not JSON") from None
    if not isinstance(payload, dict):
        raise Invalid("the body is not a JSON object")
    return payload


async def _installation(context: Context, payload: Payload) -> bool:
    session = context.session
    action, installation = payload.get("action"), field(payload, "installation", dict)
    installation_id = field(installation, "id", int)
    if action == "deleted":
        await _forget(session, installation_id)
        return True
    account = field(installation, "account", dict)
    row = await session.get(GitHubInstallation, installation_id) or GitHubInstallation(
        id=installation_id
    )
    row.account = field(account, "login", str)
    row.account_type = str(account.get("type", "User"))
    row.suspended = action == "suspend" or (action != "unsuspend" and row.suspended is True)
    row.updated_at = utcnow()
    session.add(row)
    await session.flush()
    if action == "created":
        await _add(session, installation_id, payload.get("repositories") or [])
    return True


async def _installation_repositories(context: Context, payload: Payload) -> bool:
    session = context.session
    installation_id = field(field(payload, "installation", dict), "id", int)
    if await session.get(GitHubInstallation, installation_id) is None:
        await _installation(context, {**payload, "action": "created", "repositories": []})
    await _add(session, installation_id, payload.get("repositories_added") or [])
    removed = [field(repo, "id", int) for repo in payload.get("repositories_removed") or []]
    if removed:
        await session.execute(delete(GitHubRepository).where(GitHubRepository.id.in_(removed)))
    return True


async def _add(session: AsyncSession, installation_id: int, repositories: list[Any]) -> None:
    for repo in repositories:
        repo_id = field(repo, "id", int)
        row = await session.get(GitHubRepository, repo_id) or GitHubRepository(id=repo_id)
        row.installation_id = installation_id
        row.full_name = field(repo, "full_name", str)
        session.add(row)


async def _forget(session: AsyncSession, installation_id: int) -> None:
    # Explicitly: SQLite enforces no ON DELETE CASCADE unless asked to.
    await session.execute(
        delete(GitHubRepository).where(GitHubRepository.installation_id == installation_id)
    )
    gone = delete(GitHubInstallation).where(GitHubInstallation.id == installation_id)
    await session.execute(gone)


async def _owned(
    session: AsyncSession, repository: str, numbers: tuple[int, ...]
) -> list[tuple[PullRequest, str]]:
    """The pull-request rows (and their builds' workflow ids) of these pull requests."""
    query = (
        select(PullRequest, Build.workflow_id)
        .join(Project, Project.id == PullRequest.project_id)
        .join(Build, Build.id == PullRequest.build_id)
        .where(PullRequest.provider == "github", PullRequest.number.in_(numbers))
        .where(func.lower(Project.repository) == repository.lower())
    )
    return [(row, workflow_id) for row, workflow_id in (await session.execute(query)).all()]


async def _pull_request(context: Context, payload: Payload) -> bool:
    """A build's pull request closed or merged on GitHub: its row says so and its build hears
    it (a build that already ended needs not)."""
    if payload.get("action") != "closed":
        return False
    pull = field(payload, "pull_request", dict)
    merged = pull.get("merged") is True
    by = part(payload, "sender").get("login")
    closed = PullRequestClosed(merged=merged, by=by if isinstance(by, str) else "")
    found = await _owned(context.session, repository_of(payload), (field(pull, "number", int),))
    for row, workflow_id in found:
        row.state = PR_MERGED if merged else PR_CLOSED
        if merged:
            row.merged_at = utcnow()
            row.merge_commit_sha = pull.get("merge_commit_sha")
        await build_log.add(context.session, build_log.pull_request(row, row.state))
        await send_closed(context.session, context.client, workflow_id, closed)
    return bool(found)


async def _tell(context: Context, asked: Asked | None) -> bool:
    """Signal the feedback to the build owning its pull request; False when no running build
    does (none owns it, or its workflow ended): recorded all the same, GitHub need not retry."""
    if asked is None or not asked.numbers:
        return False
    sent = False
    for row, workflow_id in await _owned(context.session, asked.repository, asked.numbers):
        if asked.head_sha is not None and (row.state, row.head_sha) != (PR_OPEN, asked.head_sha):
            continue  # about a commit the pull request no longer has
        sent = (
            await send_feedback(context.session, context.client, workflow_id, asked.feedback)
            or sent
        )
    return sent


def _feedback(read: Callable[[Payload], Asked | None]) -> Handler:
    """A handler that signals what `read` finds in an event to the build it is about."""

    async def handler(context: Context, payload: Payload) -> bool:
        return await _tell(context, read(payload))

    return handler


async def _check_suite(context: Context, payload: Payload) -> bool:
    # Off unless asked for: a flaky or unrelated check would spend the build's budget.
    if not context.settings.github_iterate_on_failing_checks:
        return False
    return await _tell(context, github_feedback.check_suite(payload))


HANDLERS: dict[str, Handler] = {
    "installation": _installation,
    "installation_repositories": _installation_repositories,
    "pull_request": _pull_request,
    "issue_comment": _feedback(github_feedback.issue_comment),
    "pull_request_review_comment": _feedback(github_feedback.review_comment),
    "pull_request_review": _feedback(github_feedback.review),
    "check_suite": _check_suite,
}
