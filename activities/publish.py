"""Local publish: the build's files become a branch on the project's bare git remote, and a
pull-request row in the app database describes it (goal, plan, tests, review, cost). The branch's
commit has the build's base (main when it started) as parent and the files as its whole tree, so
the pull request's diff against main is what the build changed, deletions included.

Idempotent at every crash point: an existing PR row is returned as is, an existing remote branch
is reused, and the commit itself is deterministic, so a retry adds no branch, commit or PR.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.errors import CofounderError, activity_boundary
from activities.gitbase import pinned_base
from activities.github.app import GitHubApp, linked
from activities.github.publish import Change, publish_on_github
from activities.gitpush import Pushed, push_branch
from activities.gitrepo import MAIN, check_names, ensure_remote
from cofounder import build_log
from cofounder.artifacts import ArtifactStore
from cofounder.db import Build, PullRequest
from cofounder.db.models import as_utc
from cofounder.payloads import PublishRequest, PullRequestRef, Usage
from cofounder.settings import Settings

log = structlog.get_logger()

TITLE_LIMIT = 200  # the pull_requests.title column


@dataclass(frozen=True)
class Where:
    """Where a pull request was opened: into which branch, on which provider, as what."""

    base: str = MAIN
    provider: str = "local"
    number: int | None = None
    url: str | None = None


class PublishActivities:
    """Publishes a finished build as a branch and a pull request: on the project's GitHub
    repository when it links one (through the App), else on its local git remote."""

    def __init__(
        self,
        settings: Settings,
        store: ArtifactStore,
        sessions: async_sessionmaker[AsyncSession],
        github: GitHubApp | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.sessions = sessions
        self.github = github

    @activity.defn
    @activity_boundary
    async def publish(self, request: PublishRequest) -> PullRequestRef:
        """Branch `cofounder/<build_id>` with one commit over the build's base (main when it
        started), and its pull-request row."""
        check_names(request.owner, request.project, request.build_id)
        project_id, created_at = await self._build_row(request.build_id)
        existing = await self._find(request.build_id)
        if existing is not None:
            return _ref(existing)

        store = self.store.for_owner(request.owner)
        body = await self._body(store, request)
        files = await store.get_tree(request.workspace_ref)
        remote = await ensure_remote(self.settings.git_dir / request.owner, request.project)
        # Pinned when the build checked main out; builds from before checkouts have none.
        base = await pinned_base(remote, request.build_id)
        branch = f"cofounder/{request.build_id}"
        message = f"{_title(request)}\n\nBuild {request.build_id}: {request.goal}"
        date = _git_date(created_at)
        if request.repository is not None:
            change = Change(branch, files, message, date, base, _title(request), body)
            link = request.repository
            published = await publish_on_github(
                linked(self.github), link.installation_id, link.repository, change
            )
            pull = published.pull
            where = Where(published.base_branch, "github", pull.number, pull.url)
            return await self._record(request, project_id, branch, published.pushed, body, where)
        pushed = await push_branch(remote, branch, files, message, date, base)
        return await self._record(request, project_id, branch, pushed, body, Where())

    async def _record(
        self,
        request: PublishRequest,
        project_id: int,
        branch: str,
        pushed: Pushed,
        body: str,
        where: Where,
    ) -> PullRequestRef:
        """Insert the pull-request row once; a concurrent or earlier insert wins and is returned."""
        row = PullRequest(
            build_id=request.build_id,
            project_id=project_id,
            title=_title(request),
            body=body,
            base=where.base,
            branch=branch,
            head_sha=pushed.head_sha,
            diff=pushed.diff,
            provider=where.provider,
            number=where.number,
            url=where.url,
        )
        async with self.sessions() as session:
            session.add(row)
            try:
                await session.flush()
                await build_log.add(session, build_log.pull_request(row, "opened"))
                await session.commit()
            except IntegrityError:
                await session.rollback()
                found = await self._find(request.build_id)
                if found is None:
                    raise
                return _ref(found)
            log.info("pull request opened", build_id=request.build_id, branch=branch, id=row.id)
            return _ref(row)

    async def _build_row(self, build_id: str) -> tuple[int, datetime]:
        async with self.sessions() as session:
            query = select(Build.project_id, Build.created_at).where(Build.id == build_id)
            found = (await session.execute(query)).one_or_none()
        if found is None:
            # The API commits the row right after starting the workflow; retrying covers the gap.
            raise CofounderError(f"build {build_id} is not in the database")
        return int(found[0]), found[1]

    async def _find(self, build_id: str) -> PullRequest | None:
        async with self.sessions() as session:
            query = select(PullRequest).where(PullRequest.build_id == build_id)
            return (await session.execute(query)).scalar_one_or_none()

    async def _body(self, store: ArtifactStore, request: PublishRequest) -> str:
        plan = await store.get_json(request.plan_ref)
        review = await store.get_json(request.review_ref)
        return pull_request_body(request, plan, review)


def pull_request_body(request: PublishRequest, plan: dict[str, Any], review: dict[str, Any]) -> str:
    """The pull request's markdown: goal, plan, test results, review and cost."""
    steps = "\n".join(f"{n}. {_step(step)}" for n, step in enumerate(plan.get("steps") or [], 1))
    attempts = f"{request.attempts} test run{'s' if request.attempts != 1 else ''} in all"
    sections = [
        f"## Goal\n\n{request.goal}",
        f"## Plan: {plan.get('title', request.title)}\n\n{plan.get('summary', '')}\n\n{steps}",
        f"## Tests\n\nPassed after {attempts}.\n\n{fenced(request.test_summary)}",
        f"## Review\n\n{review.get('summary', '')}",
        f"## Cost\n\n{cost_text(request.cost)}",
        f"---\nOpened by cofounder for build `{request.build_id}`.",
    ]
    return "\n\n".join(section.strip() for section in sections) + "\n"


def cost_text(usage: Usage) -> str:
    """A cost in dollars with its tokens and calls, as pull requests and replies show it."""
    tokens = f"{usage.input_tokens:,} input and {usage.output_tokens:,} output tokens"
    cache = (
        f"cache: {usage.cache_creation_input_tokens:,} written,"
        f" {usage.cache_read_input_tokens:,} read"
    )
    calls = f"{usage.calls} model call{'s' if usage.calls != 1 else ''}"
    return f"${usage.cost_micro_usd / 1_000_000:.4f}: {tokens} ({cache}) over {calls}."


def fenced(text: str) -> str:
    """`text` as a markdown code block, for test output and errors in pull requests."""
    # The fence must be longer than any run of backticks inside, or the block ends early.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.strip()}\n{fence}"


def _title(request: PublishRequest) -> str:
    return (request.title.strip() or request.goal.strip())[:TITLE_LIMIT]


def _git_date(created_at: datetime) -> str:
    """The build's creation time as a git date: stable across retries of the same build."""
    return f"{int(as_utc(created_at).timestamp())} +0000"


def _ref(row: PullRequest) -> PullRequestRef:
    return PullRequestRef(
        id=row.id,
        branch=row.branch,
        base=row.base,
        head_sha=row.head_sha,
        title=row.title,
        provider=row.provider,
        number=row.number,
        url=row.url,
    )


def _step(step: Any) -> str:
    """A plan step's title: steps are objects since plans name their files, text before."""
    return str(step.get("title", "")) if isinstance(step, dict) else str(step)
