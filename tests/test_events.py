"""A build's live events: server-sent, in order, from the database's log, resumable with
Last-Event-ID, ending with the build; another owner's build answers 404."""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api import queries
from api.main import create_app
from cofounder.db import LedgerEntry
from cofounder.settings import Settings
from tests.conftest import ServerThread
from tests.helpers import api_status


def parse(stream: str) -> list[dict[str, Any]]:
    """The events of an SSE body: each with its id, event name and decoded data."""
    events = []
    for block in stream.strip().split("\n\n"):
        fields: dict[str, Any] = {}
        for line in block.splitlines():
            name, _, value = line.partition(": ")
            if name in ("id", "event"):
                fields[name] = value
            elif name == "data":
                fields["data"] = json.loads(value)
        if fields:
            events.append(fields)
    return events


async def test_a_build_streams_its_phases_once_each_and_resumes(
    http: httpx.AsyncClient, worker: list[Worker]
) -> None:
    build_id = (await http.post("/api/builds", json={"project": "demo", "goal": "slugs"})).json()[
        "id"
    ]
    url = f"/api/builds/{build_id}/events?until=settled"
    answer = await http.get(url, timeout=120)  # read while the build runs, to its end
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = parse(answer.text)
    phases = [e for e in events if e["event"] == "phase"]
    assert events[-1] == {"event": "end", "data": {"status": "in_review"}}
    statuses = [e["data"]["status"] for e in phases]
    assert statuses[0] == "queued" or statuses[0] == "planning"
    assert statuses[-1] == "in_review" and "coding" in statuses and "testing" in statuses
    ids = [int(e["id"]) for e in phases]
    assert ids == sorted(set(ids))  # in order, none twice
    recorded = (await api_status(http, build_id, "in_review"))["progress"]
    assert [p["seq"] for p in recorded] == [e["data"]["seq"] for e in phases]

    # A client that saw the first three resumes after them: the rest, nothing twice.
    resumed = await http.get(url, headers={"Last-Event-ID": phases[2]["id"]})
    rest = [e for e in parse(resumed.text) if e["event"] == "phase"]
    assert [e["id"] for e in rest] == [e["id"] for e in phases[3:]]


async def test_every_client_of_a_build_gets_every_event_once(
    http: httpx.AsyncClient, worker: list[Worker]
) -> None:
    """Clients that join at the start, mid-build and late are all served by the process's one
    reader of the log (after catching up from the database): the same events, in order."""
    made = await http.post("/api/builds", json={"project": "demo", "goal": "slugs"})
    url = f"/api/builds/{made.json()['id']}/events?until=settled"

    async def follow(delay: float) -> list[dict[str, Any]]:
        await asyncio.sleep(delay)
        return parse((await http.get(url, timeout=120)).text)

    seen = await asyncio.gather(*(follow(delay) for delay in (0, 0, 0, 0.5, 1.5)))
    whole = parse((await http.get(url)).text)
    assert len(whole) > 50 and whole[-1]["event"] == "end"
    for events in seen:
        assert events == whole


async def test_bad_resume_points_and_unknown_builds_are_refused(http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/builds/nope/events")).status_code == 404
    made = await http.post("/api/builds", json={"project": "demo", "goal": "slugs"})
    url = f"/api/builds/{made.json()['id']}/events"
    assert (await http.get(url, headers={"Last-Event-ID": "x"})).status_code == 422
    assert (await http.get(url, params={"until": "never"})).status_code == 422


async def events_of(stream: httpx.Response) -> AsyncIterator[dict[str, Any]]:
    """Events as they arrive on a live stream (keep-alive comments skipped)."""
    fields: dict[str, Any] = {}
    async for line in stream.aiter_lines():
        if not line:
            if fields:
                yield fields
            fields = {}
            continue
        name, _, value = line.partition(": ")
        if name in ("id", "event"):
            fields[name] = value
        elif name == "data":
            fields["data"] = json.loads(value)


async def test_a_client_that_drops_mid_build_resumes_without_gaps(
    settings: Settings, env: WorkflowEnvironment, worker: list[Worker]
) -> None:
    address = env.client.service_client.config.target_host
    served = settings.model_copy(update={"temporal_address": address})
    with ServerThread(create_app(served)) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=120) as http:
            made = await http.post("/api/builds", json={"project": "demo", "goal": "slugs"})
            url = f"/api/builds/{made.json()['id']}/events?until=settled"
            seen: list[dict[str, Any]] = []
            async with http.stream("GET", url) as stream:
                async for event in events_of(stream):
                    seen.append(event)
                    if len(seen) == 2:
                        break  # the connection drops while the build goes on
            resume = {"Last-Event-ID": seen[-1]["id"]}
            async with http.stream("GET", url, headers=resume) as stream:
                seen += [event async for event in events_of(stream)]
            whole = parse((await http.get(url)).text)
    assert len(whole) > 5  # the drop came early in the build
    assert seen[-1]["event"] == "end" and seen[-1] == whole[-1]
    assert [e["id"] for e in seen[:-1]] == [e["id"] for e in whole[:-1]]  # no gap, no repeat


async def test_the_stream_tells_every_turn_call_command_cost_and_pull_request(
    http: httpx.AsyncClient, worker: list[Worker], sessions: async_sessionmaker[AsyncSession]
) -> None:
    made = await http.post("/api/builds", json={"project": "demo", "goal": "slugs"})
    build_id = made.json()["id"]
    url = f"/api/builds/{build_id}/events"
    first = parse((await http.get(f"{url}?until=settled", timeout=120)).text)
    sent = await http.post(f"/api/builds/{build_id}/feedback", json={"body": "Trim dashes."})
    assert sent.status_code == 202
    await iterated(http, build_id)
    assert (await http.post(f"/api/builds/{build_id}/pull-request/merge")).status_code == 200
    events = parse((await http.get(url, timeout=120)).text)
    kinds = collections.defaultdict(list)
    for event in events[:-1]:
        kinds[event["event"]].append(event["data"])

    assert events[-1] == {"event": "end", "data": {"status": "merged"}}
    ids = [int(e["id"]) for e in events[:-1]]
    assert ids == sorted(set(ids)) and events[: len(first) - 1] == first[:-1]
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(LedgerEntry).where(LedgerEntry.build_id == build_id).order_by(LedgerEntry.id)
            )
        ).all()
    # One cost event per billed call, its running total the ledger's; one turn per coder call.
    assert [c["call_usd"] for c in kinds["cost"]] == [r.cost_micro_usd / 1e6 for r in rows]
    assert kinds["cost"][-1]["total_usd"] == sum(r.cost_micro_usd for r in rows) / 1e6
    assert len(kinds["turn"]) == sum(r.role == "coder" for r in rows)
    called = [call["id"] for turn in kinds["turn"] for call in turn["tool_calls"]]
    assert [call["call_id"] for call in kinds["tool_call"]] == called
    # Every command starts, streams its output, ends; the first test run's failure shows.
    commands = [c for c in kinds["command"] if c["state"] == "running"]
    tests = [c for c in commands if c["purpose"] == "test"]
    assert len(tests) >= 2 and len(kinds["command"]) == 2 * len(commands)
    assert [c["step"] for c in tests[:2]] == [1, 1]  # the first step's failing run, then its fix
    ended = {c["command_id"]: c for c in kinds["command"] if c["state"] == "done"}
    assert ended[tests[0]["command_id"]]["exit_code"] != 0
    assert ended[tests[-1]["command_id"]]["exit_code"] == 0
    failing = "".join(
        o["text"] for o in kinds["output"] if o["command_id"] == tests[0]["command_id"]
    )
    assert "failed" in failing.lower()
    assert [p["action"] for p in kinds["pull_request"]] == ["opened", "updated", "merged"]
    states = [(i["number"], i["state"]) for i in kinds["iteration"]]
    assert states == [(1, "started"), (1, "ended")]
    assert kinds["phase"][-1]["status"] == "merged"


async def iterated(http: httpx.AsyncClient, build_id: str, timeout: float = 60.0) -> None:
    """Wait until the build's first review iteration is published."""
    deadline = time.monotonic() + timeout
    while True:
        build = (await http.get(f"/api/builds/{build_id}")).json()
        if [i["status"] for i in build["iterations"]] == ["pushed"]:
            return
        assert time.monotonic() < deadline, f"no iteration published: {build}"
        await asyncio.sleep(0.2)


async def test_an_ended_run_still_winding_down_is_not_running_again(
    http: httpx.AsyncClient, env: WorkflowEnvironment
) -> None:
    """A build records its ending before its workflow completes (it closes its sandbox and
    settles its cost after): that run must end the stream; only another run (a reset) goes on."""
    made = await http.post("/api/builds", json={"project": "demo", "goal": "slugs"})
    handle = env.client.get_workflow_handle(made.json()["workflow_id"])  # no worker: it runs
    run = (await handle.describe()).run_id
    assert not await queries.running_again(handle, ended_run=run)
    assert await queries.running_again(handle, ended_run="an-earlier-run")
    await handle.terminate("done")
    assert not await queries.running_again(handle, ended_run="an-earlier-run")


async def test_after_resumes_as_last_event_id_does(
    http: httpx.AsyncClient, worker: list[Worker]
) -> None:
    made = await http.post("/api/builds", json={"project": "demo", "goal": "slugs"})
    url = f"/api/builds/{made.json()['id']}/events?until=settled"
    whole = parse((await http.get(url, timeout=120)).text)
    middle = whole[len(whole) // 2]["id"]
    by_query = parse((await http.get(f"{url}&after={middle}")).text)
    by_header = parse((await http.get(url, headers={"Last-Event-ID": middle})).text)
    assert by_query == by_header == whole[len(whole) // 2 + 1 :]
    refused = await http.get(f"{url}&after=-1")
    assert refused.status_code == 422
