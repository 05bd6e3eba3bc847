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

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Literal

from fastapi.sse import KEEPALIVE_COMMENT, format_sse_event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.event_hub import NOT_RECORDED, Event, EventHub, read_log

PAGE = 500  # events read at once while a client catches up
RETRY = b"retry: 2000\n\n"  # how soon a browser's EventSource reconnects (ms), sent first
KEEP_ALIVE_SECONDS = 15.0  # a comment after this long without an event keeps proxies open
Until = Literal["ended", "settled"]


async def build_events(
    sessions: async_sessionmaker[AsyncSession],
    hub: EventHub,
    build_id: str,
    after: int,
    until: Until = "ended",
    running_again: Callable[[str | None], Awaitable[bool]] | None = None,
) -> AsyncIterator[bytes]:
    """The build's events after id `after`, as they are recorded, then `end`, in the SSE wire
    format: each chunk holds the events that were waiting (each encoded once, whoever gets
    it), or a keep-alive comment. The caller has checked that the build is the client's. A
    build recorded as ended (by a run) whose workflow is `running_again` in another run (an
    operator reset it) goes on being streamed.

    The client first catches up from the database, then takes the hub's batches; it joins
    the hub before catching up, so an event recorded meanwhile is in one or the other (and
    one in both is sent once)."""
    sent = Sent(after)
    yield RETRY
    async with hub.subscribe(build_id, after) as queue:
        while True:
            async with sessions() as session:
                statuses, rows = await read_log(session, [build_id], sent.after, PAGE)
            status, run_id = statuses.get(build_id, NOT_RECORDED)
            yield sent.frames(event for _, event in rows)
            if len(rows) < PAGE:
                break
        while True:
            if status.terminal or (until == "settled" and status.settled):
                if not (status.terminal and running_again and await running_again(run_id)):
                    yield format_sse_event(event="end", data_str=json.dumps({"status": status}))
                    return
            try:
                batches = [await asyncio.wait_for(queue.get(), KEEP_ALIVE_SECONDS)]
            except TimeoutError:
                yield KEEPALIVE_COMMENT
                continue
            while not queue.empty():
                batches.append(queue.get_nowait())
            yield sent.frames(event for batch in batches for event in batch.events)
            status, run_id = batches[-1].status, batches[-1].run_id


class Sent:
    """The newest event id a client has been sent."""

    def __init__(self, after: int) -> None:
        self.after = after

    def frames(self, events: Iterable[Event]) -> bytes:
        """The events not sent yet, in one chunk."""
        chunk = bytearray()
        for event in events:
            if event.id > self.after:
                chunk += event.frame
                self.after = event.id
        return bytes(chunk)
