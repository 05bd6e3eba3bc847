"""Starting many builds that stay open (each asks for approval, so it waits after its plan),
through `POST /api/builds`, paced to what the worker keeps up with."""

from __future__ import annotations

import asyncio
import sys
import time

import httpx
from sqlalchemy import func, select

from cofounder.db import Build, make_engine

BODY = {"project": "scale", "goal": "a slugify library", "require_approval": True}
WAITING = "awaiting_approval"
RECOUNT_SECONDS = 0.5


def say(message: str) -> None:
    """Progress goes to stderr; stdout is the report."""
    print(message, file=sys.stderr, flush=True)


class Starter:
    """Starts builds `concurrency` requests at a time, and counts those waiting for approval
    from the app database (the last write of a build's way there; no build is queried for it).

    Paced starts hold back while more than `backlog` started builds are not yet waiting: past
    the worker's workflow cache a queued build's next workflow task finds it evicted and
    replays its history, so an unpaced flood makes every build dearer (a 10,000-build run
    without pacing cost 215 ms of CPU per build against 145 ms)."""

    def __init__(self, http: httpx.AsyncClient, database_url: str, concurrency: int) -> None:
        self.http = http
        self.engine = make_engine(database_url)
        self.concurrency = concurrency
        self.backlog = 0  # 0: no pacing
        self.ids: list[str] = []  # every build this starter started
        self.refused: list[str] = []  # the bodies of 503 answers, each asked again
        self._waiting = 0
        self._counted_at = 0.0

    async def start(self, count: int, paced: bool = False) -> list[str]:
        """Start `count` builds; their ids. A 503 (the API could not start or save the build,
        so nothing was created) is noted and asked again."""
        ids: list[str] = []
        todo = iter(range(count))

        async def client() -> None:
            for _ in todo:  # one shared iterator: the clients take turns at the numbers
                if paced and self.backlog:
                    await self._room()
                ids.append(await self._start_one())
                if len(ids) % 1000 == 0:
                    say(f"  {len(ids)} started")

        await asyncio.gather(*(client() for _ in range(self.concurrency)))
        return ids

    async def _start_one(self) -> str:
        while (answer := await self.http.post("/api/builds", json=BODY)).status_code == 503:
            self.refused.append(answer.text)
            say(f"  refused: {answer.text[:200]}")
        answer.raise_for_status()
        build_id: str = answer.json()["id"]
        self.ids.append(build_id)
        return build_id

    async def _room(self) -> None:
        while self.started - self._waiting >= self.backlog:
            if time.monotonic() - self._counted_at < RECOUNT_SECONDS:
                await asyncio.sleep(0.1)
                continue
            self._counted_at = time.monotonic()
            self._waiting = await self.waiting()

    async def waiting(self) -> int:
        query = select(func.count()).select_from(Build).where(Build.status == WAITING)
        async with self.engine.connect() as connection:
            return int((await connection.execute(query)).scalar_one())

    @property
    def started(self) -> int:
        return len(self.ids)

    async def close(self) -> None:
        await self.engine.dispose()

    async def until_waiting(self, count: int) -> float:
        """Wait until `count` builds wait for approval; the time it took."""
        began, seen = time.perf_counter(), -1
        while (now := await self.waiting()) < count:
            if now // 1000 != seen // 1000:
                say(f"  {now} awaiting approval")
            seen = now
            await asyncio.sleep(1)
        return time.perf_counter() - began
