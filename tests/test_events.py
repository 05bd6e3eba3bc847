"""A build's live events: server-sent, in order, from the database's log, resumable with
Last-Event-ID, ending with the build; another owner's build answers 404."""

from __future__ import annotations

import json
from typing import Any

import httpx
from temporalio.worker import Worker

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
