"""One reader of the build log for every live stream an API process serves: however many
clients follow however many builds, the database is asked twice per tick (the followed builds'
statuses, then their new events), and each new event is handed to every client following its
build. Any API instance can serve any build: the log is in the database, not here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi.sse import format_sse_event
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cofounder.db import Build, BuildLogEntry
from cofounder.payloads import BuildStatus

log = structlog.get_logger()

TICK_SECONDS = 0.1  # how often the log is read while anyone follows a build
PAGE = 1000  # events read at once; a full page is followed by another read at once
FAILURE_PAUSE = 1.0  # after the database refused a read


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    data: dict[str, Any]

    @functools.cached_property
    def frame(self) -> bytes:
        """The event as the stream sends it, encoded once for every client that gets it."""
        data = json.dumps(self.data, ensure_ascii=False, separators=(",", ":"))
        return format_sse_event(data_str=data, event=self.kind, id=str(self.id))


# A build's status and the workflow run that recorded it.
Status = tuple[BuildStatus, str | None]
NOT_RECORDED: Status = (BuildStatus.QUEUED, None)


@dataclass(frozen=True)
class Batch:
    """A build's events newer than the hub had seen, with its status read before them (an
    event commits with its status, so every event of that status is in the batch or before)."""

    events: list[Event]
    status: BuildStatus
    run_id: str | None  # the run that recorded the status


class EventHub:
    """Polls the log for the builds being followed and fans each batch out to their queues."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], tick: float = TICK_SECONDS):
        self.sessions = sessions
        self.tick = tick
        self._queues: dict[str, set[asyncio.Queue[Batch]]] = defaultdict(set)
        self._after: dict[str, int] = {}  # per build: the newest event handed out
        self._status: dict[str, Status] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def subscribe(self, build_id: str, after: int) -> AsyncIterator[asyncio.Queue[Batch]]:
        """A queue of the build's batches from now on (events past `after` at least; a
        subscriber skips any it already has)."""
        queue: asyncio.Queue[Batch] = asyncio.Queue()
        self._queues[build_id].add(queue)
        self._after.setdefault(build_id, after)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="event-hub")
        try:
            yield queue
        finally:
            self._queues[build_id].discard(queue)
            if not self._queues[build_id]:
                del self._queues[build_id]
                self._after.pop(build_id, None)
                self._status.pop(build_id, None)

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while self._queues:
            try:
                full = await self._read()
            except Exception as err:  # the database is away: the streams wait, then go on
                log.warning("event hub read failed", error=str(err))
                await asyncio.sleep(FAILURE_PAUSE)
                continue
            if not full:
                await asyncio.sleep(self.tick)

    async def _read(self) -> bool:
        """One tick: statuses, then events, handed out; whether the page was full."""
        builds = list(self._queues)
        if not builds:
            return False
        low = min(self._after.get(b, 0) for b in builds)
        async with self.sessions() as session:
            status, rows = await read_log(session, builds, low)
        news: dict[str, list[Event]] = defaultdict(list)
        for build_id, event in rows:
            if event.id > self._after.get(build_id, 0):
                news[build_id].append(event)
        for build_id in builds:
            self._hand_out(build_id, news.get(build_id, []), status.get(build_id))
        return len(rows) == PAGE

    def _hand_out(self, build_id: str, events: list[Event], status: Status | None) -> None:
        if build_id not in self._queues:
            return  # its last follower left during the read
        status = status or NOT_RECORDED
        if not events and self._status.get(build_id) == status:
            return
        if events:
            self._after[build_id] = events[-1].id
        self._status[build_id] = status
        for queue in self._queues[build_id]:
            queue.put_nowait(Batch(events, *status))


async def read_log(
    session: AsyncSession, builds: list[str], after: int, limit: int = PAGE
) -> tuple[dict[str, Status], list[tuple[str, Event]]]:
    """The builds' statuses (with the run that recorded each), then their events past id
    `after` in order, at most `limit`. The statuses come first: an event commits with its
    status, so every event of a status read here is in the events read after it (or past a
    full page)."""
    statuses = await session.execute(
        select(Build.id, Build.status, Build.run_id).where(Build.id.in_(builds))
    )
    status = {row.id: (BuildStatus(row.status), row.run_id) for row in statuses}
    query = (
        select(BuildLogEntry.id, BuildLogEntry.build_id, BuildLogEntry.kind)
        .add_columns(BuildLogEntry.data)
        .where(BuildLogEntry.build_id.in_(builds), BuildLogEntry.id > after)
        .order_by(BuildLogEntry.id)
        .limit(limit)
    )
    rows = (await session.execute(query)).all()
    return status, [(row.build_id, Event(row.id, row.kind, row.data)) for row in rows]
