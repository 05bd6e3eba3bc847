"""A build's live events, for `GET /api/builds/{id}/events` (server-sent events): read from the
database's ordered log, so any API instance serves any build, and resumable after the last
event a client saw (its `Last-Event-ID`), so a reconnecting client misses nothing and sees
nothing twice.

Each event is one row of `build_log` (cofounder/build_log.py: phases, turns, tool calls,
commands and their output, costs, pull request changes, review iterations), its SSE name the
row's kind and its id the row's id. The stream ends, with an `end` event, once the build has
ended, or has settled (ended, or is in review) when the client asks `until=settled`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Literal

from fastapi.sse import ServerSentEvent
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.event_hub import Event, EventHub
from cofounder.db import Build, BuildLogEntry
from cofounder.payloads import BuildStatus

PAGE = 500  # events read at once while a client catches up
RETRY_MILLISECONDS = 2000  # how soon a browser's EventSource reconnects
Until = Literal["ended", "settled"]


async def build_events(
    sessions: async_sessionmaker[AsyncSession],
    hub: EventHub,
    build_id: str,
    after: int,
    until: Until = "ended",
    running_again: Callable[[str | None], Awaitable[bool]] | None = None,
) -> AsyncIterator[ServerSentEvent]:
    """The build's events after id `after`, as they are recorded, then `end`. The caller has
    checked that the build is the client's. A build recorded as ended (by a run) whose
    workflow is `running_again` in another run (an operator reset it) goes on being streamed.

    The client first catches up from the database, then takes the hub's batches; it joins
    the hub before catching up, so an event recorded meanwhile is in one or the other (and
    one in both is sent once)."""
    sent = Sent(after)
    async with hub.subscribe(build_id, after) as queue:
        while True:
            (status, run_id), rows = await _catch_up(sessions, build_id, sent.after)
            for row in rows:
                yield sent.event(Event(row.id, row.kind, row.data))
            if len(rows) < PAGE:
                break
        while True:
            if status.terminal or (until == "settled" and status.settled):
                if not (status.terminal and running_again and await running_again(run_id)):
                    yield ServerSentEvent(event="end", data={"status": status.value})
                    return
            batch = await queue.get()
            for event in batch.events:
                if event.id > sent.after:
                    yield sent.event(event)
            status, run_id = batch.status, batch.run_id


class Sent:
    """What a client has been sent: the newest id, and whether it has had the first event
    (which carries the reconnection delay)."""

    def __init__(self, after: int) -> None:
        self.after = after
        self.first = True

    def event(self, event: Event) -> ServerSentEvent:
        self.after = event.id
        retry = RETRY_MILLISECONDS if self.first else None
        self.first = False
        return ServerSentEvent(id=str(event.id), event=event.kind, data=event.data, retry=retry)


async def _catch_up(
    sessions: async_sessionmaker[AsyncSession], build_id: str, after: int
) -> tuple[tuple[BuildStatus, str | None], list[BuildLogEntry]]:
    async with sessions() as session:
        # The status first: an event and its status commit together, so every event of a
        # status read here is in the page read after it.
        now = select(Build.status, Build.run_id).where(Build.id == build_id)
        recorded = (await session.execute(now)).one_or_none()
        query = (
            select(BuildLogEntry)
            .where(BuildLogEntry.build_id == build_id, BuildLogEntry.id > after)
            .order_by(BuildLogEntry.id)
            .limit(PAGE)
        )
        rows = list((await session.scalars(query)).all())
    if recorded is None:
        return (BuildStatus.QUEUED, None), rows
    return (BuildStatus(recorded.status), recorded.run_id), rows
