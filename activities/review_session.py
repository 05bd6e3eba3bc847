"""A build's review session after its pull request opens: each iteration's feedback gathered for
the coder (with the review threads it belongs to), and each iteration published as one commit
on the pull request's branch, one reply on the pull request and one row.

Idempotent at every crash point: the feedback artifact is content-addressed, the commit is
deterministic and pushed only over the head it began from, the reply is found by its marker
before one is posted, and the iteration's row, written last, answers every later retry.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import structlog
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.errors import BadRequest, activity_boundary
from activities.github.app import GitHubApp, linked
from activities.github.remote import repository_remote
from activities.github.replies import reply_once, review_comments, thread_of
from activities.gitpush import Pushed, Remote, push_over
from activities.gitrepo import check_names, ensure_remote
from activities.iteration_reply import iteration_status, marker, reply_body
from cofounder import build_log
from cofounder.artifacts import ArtifactStore
from cofounder.build_log import SUMMARY_CHARS, clip
from cofounder.db import PullRequest, ReviewIteration
from cofounder.db.iterations import ITERATION_PUSHED
from cofounder.payloads import PullRequestRef
from cofounder.payloads.session import (
    Feedback,
    FeedbackBrief,
    FeedbackRequest,
    IterationRequest,
    IterationResult,
)
from cofounder.settings import Settings

log = structlog.get_logger()

SUMMARY_LIMIT = 120  # a brief's one line, as replies and statuses show it


class SessionActivities:
    """What a review session does outside its workflow: on the project's GitHub repository when
    it links one (through the App), else on its local git remote."""

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
    async def gather_feedback(self, request: FeedbackRequest) -> FeedbackBrief:
        """One artifact with the iteration's feedback in order, each review comment with its
        thread, for the coder to read; and a one-line summary of it."""
        threads = await self._threads(request)
        items = [_item(item, threads) for item in request.items]
        gathered = {"build_id": request.build_id, "iteration": request.iteration, "items": items}
        ref = await self.store.for_owner(request.owner).put_json(gathered)
        summary = summarize(request.items)
        started = build_log.iteration(
            request.build_id, request.iteration, "started", summary=clip(summary, SUMMARY_CHARS)
        )
        await build_log.append(self.sessions, started)
        return FeedbackBrief(feedback_ref=ref, summary=summary)

    @activity.defn
    @activity_boundary
    async def publish_iteration(self, request: IterationRequest) -> IterationResult:
        """Push the iteration's code over the pull request's head (when it has code that
        changed), reply on the pull request and record the iteration, each once."""
        check_names(request.owner, request.project, request.build_id)
        found = await self._find(request.build_id, request.iteration)
        if found is not None:
            return _result(found)
        pushed = await self._push(request)
        if pushed is not None:
            await self._follow(request.build_id, pushed)
        status = iteration_status(request, pushed)
        body = reply_body(request, status, pushed)
        reply_url = await self._reply(request, body)
        head_sha = pushed.head_sha if pushed is not None else request.pull_request.head_sha
        row = ReviewIteration(
            build_id=request.build_id,
            number=request.iteration,
            status=status,
            feedback_summary=request.feedback.summary,
            head_sha=head_sha,
            reply_url=reply_url,
            reply_body=body,
            cost_micro_usd=request.cost.cost_micro_usd,
            error=request.error,
        )
        return await self._record(row)

    async def _threads(self, request: FeedbackRequest) -> dict[int, dict[str, Any]]:
        """The thread of each review comment among the items, by comment id; GitHub is asked
        only when there are some (a local remote has none)."""
        wanted = {i.comment_id: i.in_reply_to for i in request.items if i.comment_id is not None}
        link = request.repository
        if link is None or not wanted:
            return {}
        number = _number(request.pull_request)
        async with await linked(self.github).client(link.installation_id) as github:
            comments = await review_comments(github, link.repository, number)
        threads = {cid: thread_of(comments, cid, answers) for cid, answers in wanted.items()}
        return {cid: thread for cid, thread in threads.items() if thread is not None}

    async def _push(self, request: IterationRequest) -> Pushed | None:
        if request.workspace_ref is None:
            return None
        files = await self.store.for_owner(request.owner).get_tree(request.workspace_ref)
        summary, build_id = request.feedback.summary, request.build_id
        message = f"Iteration {request.iteration}: {summary}\n\nBuild {build_id}"
        pull = request.pull_request
        remote = await self._remote(request)
        return await push_over(remote, pull.branch, pull.head_sha, files, message, request.date)

    async def _remote(self, request: IterationRequest) -> Remote:
        base = request.pull_request.base
        if request.repository is not None:
            link = request.repository
            found = await repository_remote(
                linked(self.github), link.installation_id, link.repository
            )
            return replace(found, default_branch=base)
        location = await ensure_remote(self.settings.git_dir / request.owner, request.project)
        return Remote(location, base)

    async def _follow(self, build_id: str, pushed: Pushed) -> None:
        """The pull-request row follows its branch: the new head, and the diff against its base."""
        async with self.sessions() as session:
            await session.execute(
                update(PullRequest)
                .where(PullRequest.build_id == build_id)
                .values(head_sha=pushed.head_sha, diff=pushed.diff)
            )
            query = select(PullRequest).where(PullRequest.build_id == build_id)
            row = (await session.execute(query)).scalar_one_or_none()
            if row is not None:
                await build_log.add(session, build_log.pull_request(row, "updated"))
            await session.commit()

    async def _reply(self, request: IterationRequest, body: str) -> str | None:
        """The reply's page on GitHub, posted once; None on the local remote, where the
        iteration's row is the reply."""
        link = request.repository
        if link is None:
            return None
        number = _number(request.pull_request)
        mark = marker(request.build_id, request.iteration)
        async with await linked(self.github).client(link.installation_id) as github:
            return await reply_once(github, link.repository, number, body, mark)

    async def _record(self, row: ReviewIteration) -> IterationResult:
        """Insert the iteration's row once; a concurrent or earlier insert wins and is returned."""
        ended = build_log.iteration(row.build_id, row.number, "ended", status=row.status)
        async with self.sessions() as session:
            session.add(row)
            try:
                await session.flush()
                await build_log.add(session, ended)
                await session.commit()
            except IntegrityError:
                await session.rollback()
                found = await self._find(row.build_id, row.number)
                if found is None:
                    raise
                return _result(found)
            log.info(
                "iteration published",
                build_id=row.build_id,
                iteration=row.number,
                status=row.status,
                head_sha=row.head_sha,
            )
            return _result(row)

    async def _find(self, build_id: str, number: int) -> ReviewIteration | None:
        async with self.sessions() as session:
            query = select(ReviewIteration).where(
                ReviewIteration.build_id == build_id, ReviewIteration.number == number
            )
            return (await session.execute(query)).scalar_one_or_none()


def summarize(items: list[Feedback]) -> str:
    """One line for a batch of feedback: its first item, and how many more there are."""
    if not items:
        return "no feedback"
    first = items[0]
    lines = first.body.strip().splitlines()
    said = lines[0].strip() if lines else first.kind
    head = f"@{first.author}: {said}" if first.author else said
    more = f" (+{len(items) - 1} more)" if len(items) > 1 else ""
    room = SUMMARY_LIMIT - len(more)
    if len(head) > room:
        head = head[: room - 1].rstrip() + "…"
    return head + more


def _item(item: Feedback, threads: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """What the coder reads of one piece of feedback; a review comment's thread with it."""
    said = item.model_dump(include={"id", "kind", "author", "body", "url", "path", "line"})
    if item.comment_id is not None and item.comment_id in threads:
        said["thread"] = threads[item.comment_id]
    return said


def _number(pull: PullRequestRef) -> int:
    if pull.number is None:
        raise BadRequest(f"pull request {pull.id} has no number on GitHub")
    return pull.number


def _result(row: ReviewIteration) -> IterationResult:
    pushed = row.status == ITERATION_PUSHED
    return IterationResult(head_sha=row.head_sha, pushed=pushed, reply_url=row.reply_url)
