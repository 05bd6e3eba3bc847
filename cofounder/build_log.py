"""A build's live events: one ordered table (`build_log`) that the activities and the API write
as things happen and `GET /api/builds/{id}/events` streams, so any API instance serves any
build and a reconnecting client resumes after the last id it saw.

Each event has a kind (below), a key naming its origin (a retried write of the same event adds
nothing) and a small JSON body: texts are cut to a few KB here, whole logs and conversations
stay in the artifact store.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cofounder.db import Build, BuildLogEntry, PullRequest, insert_for
from cofounder.db.models import as_utc, utcnow

Kind = Literal[
    "phase",  # the build's status changed
    "turn",  # a model turn of an agent loop answered
    "tool_call",  # one of its tool calls ran in the sandbox
    "command",  # a command started or ended in the sandbox (tests, installs, run_command)
    "output",  # a chunk of a command's output
    "cost",  # a model call was billed
    "pull_request",  # the pull request opened, moved, merged or closed
    "iteration",  # a review iteration started or ended
]
KINDS: tuple[Kind, ...] = Kind.__args__  # type: ignore[attr-defined]

TEXT_CHARS = 2000  # a turn's text
RESULT_CHARS = 1000  # a tool call's answer
SUMMARY_CHARS = 200  # a command line, a tool call's arguments


def stamp(at: datetime) -> str:
    """A time as the API writes it (ISO 8601, UTC, with Z)."""
    return as_utc(at).isoformat().replace("+00:00", "Z")


def clip(text: str | None, limit: int) -> str:
    """`text` cut to `limit` characters, marked where it was cut."""
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def entry(
    build_id: str, kind: Kind, key: str, data: dict[str, Any], at: datetime | None = None
) -> dict[str, Any]:
    """One row of the log; `data` gains its time as `at`."""
    at = at or utcnow()
    return {
        "build_id": build_id,
        "kind": kind,
        "key": key[:255],
        "data": {**data, "at": stamp(at)},
        "at": at,
    }


async def add(session: AsyncSession, *rows: dict[str, Any]) -> None:
    """Insert `rows` in the caller's transaction, skipping any already written.

    A stream reads a build's events past the last id it sent, so a build's ids must become
    visible in their order. SQLite writes one transaction at a time; on PostgreSQL, whose
    sequence hands out ids before commit, the build's row is locked first (FOR NO KEY
    UPDATE: the lock an UPDATE of the row takes, which foreign-key checks do not wait on),
    so a build's writers take ids and commit one after another."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        for build_id in sorted({row["build_id"] for row in rows}):
            lock = select(Build.id).where(Build.id == build_id).with_for_update(key_share=True)
            await session.execute(lock)
    insert = insert_for(session)(BuildLogEntry).values(list(rows))
    await session.execute(insert.on_conflict_do_nothing(index_elements=["build_id", "key"]))


async def append(sessions: async_sessionmaker[AsyncSession], *rows: dict[str, Any]) -> None:
    """Insert `rows` in a transaction of their own."""
    async with sessions() as session:
        await add(session, *rows)
        await session.commit()


def phase(
    build_id: str,
    *,
    run_id: str,
    seq: int,
    status: str,
    attempt: int,
    error: str | None,
    cost_micro_usd: int,
    at: datetime,
) -> dict[str, Any]:
    """A phase change, shaped as the API's progress entries are."""
    data = {
        "seq": seq,
        "run_id": run_id,
        "status": status,
        "attempt": attempt,
        "error": error,
        "cost_usd": cost_micro_usd / 1_000_000,
    }
    return entry(build_id, "phase", f"phase:{run_id}:{seq}", data, at)


def pull_request(row: PullRequest, action: str) -> dict[str, Any]:
    """The pull request `row` (as it is now) opened, got a new head, merged or closed."""
    data = {
        "action": action,
        "provider": row.provider,
        "number": row.number,
        "url": row.url,
        "branch": row.branch,
        "head_sha": row.head_sha,
    }
    key = f"pr:{action}:{row.head_sha}" if action == "updated" else f"pr:{action}"
    return entry(row.build_id, "pull_request", key, data)


def iteration(build_id: str, number: int, state: str, **fields: Any) -> dict[str, Any]:
    """A review iteration `started` (its feedback summed up) or `ended` (how it went)."""
    data = {"number": number, "state": state, **fields}
    return entry(build_id, "iteration", f"iteration:{number}:{state}", data)
