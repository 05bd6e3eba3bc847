"""A build's live events, for `GET /api/builds/{id}/events` (server-sent events): read from the
database's ordered log, so any API instance serves any build, and resumable after the last
event a client saw (its `Last-Event-ID`), so a reconnecting client misses nothing and sees
nothing twice.

Each event is one row of `build_events` (a phase change, with the attempt, error and cost at
that moment), its id the row's id. The stream ends, with an `end` event, once the build has
ended, or has settled (ended, or is in review) when the client asks `until=settled`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

from fastapi.sse import ServerSentEvent
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.schemas.builds import ProgressOut
from cofounder.db import Build, BuildEvent
from cofounder.payloads import BuildStatus

# How often the log is read for new events while the build runs; FastAPI sends a keep-alive
# comment after 15 s without one, so proxies keep the stream open.
POLL_SECONDS = 0.5
PAGE = 500  # events read at once
RETRY_MILLISECONDS = 2000  # how soon a browser's EventSource reconnects
Until = Literal["ended", "settled"]


async def build_events(
    sessions: async_sessionmaker[AsyncSession],
    build_id: str,
    after: int,
    until: Until = "ended",
    poll: float = POLL_SECONDS,
) -> AsyncIterator[ServerSentEvent]:
    """The build's events after id `after`, as they are recorded, then `end`. The caller has
    checked that the build is the client's."""
    first = True
    while True:
        async with sessions() as session:
            # The status first: an event and its status commit together, so every event of a
            # status read here is in the page read after it.
            recorded = await session.scalar(select(Build.status).where(Build.id == build_id))
            status = BuildStatus(recorded or BuildStatus.QUEUED)
            rows = await _page(session, build_id, after)
        for row in rows:
            after = row.id
            data = ProgressOut.model_validate(row).model_dump(mode="json")
            yield ServerSentEvent(
                id=str(row.id),
                event="phase",
                data=data,
                retry=RETRY_MILLISECONDS if first else None,
            )
            first = False
        if len(rows) == PAGE:
            continue  # more are waiting
        if status.terminal or (until == "settled" and status.settled):
            yield ServerSentEvent(event="end", data={"status": status.value})
            return
        await asyncio.sleep(poll)


async def _page(session: AsyncSession, build_id: str, after: int) -> list[BuildEvent]:
    query = (
        select(BuildEvent)
        .where(BuildEvent.build_id == build_id, BuildEvent.id > after)
        .order_by(BuildEvent.id)
        .limit(PAGE)
    )
    return list((await session.scalars(query)).all())
