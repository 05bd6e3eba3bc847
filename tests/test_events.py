"""A build's live events: server-sent, in order, from the database's log, resumable with
Last-Event-ID, ending with the build; another owner's build answers 404."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from api.main import create_app
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
    http: httpx.AsyncClient, worker: Worker
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
    settings: Settings, env: WorkflowEnvironment, worker: Worker
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
