"""The caller's X-Request-ID reaches the log lines of the activities its request caused.

A build started with one id, approved by a request with another and sent feedback by a third:
each activity logs with the id of the newest request the workflow had heard when it scheduled it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.converter import PayloadConverter
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from cofounder.correlation import HEADER
from cofounder.payloads import build_workflow_id
from cofounder.replay import replay_runs
from tests.helpers import GOAL, api_status
from tests.log_capture import json_logs


async def test_request_ids_reach_the_activities_they_caused(
    http: httpx.AsyncClient, worker: list[Worker], env: WorkflowEnvironment
) -> None:
    with json_logs() as logs:
        body = {"project": "demo", "goal": GOAL, "require_approval": True}
        started = await http.post("/api/builds", json=body, headers={"X-Request-ID": "req-start"})
        build_id = started.json()["id"]
        await api_status(http, build_id, "awaiting_approval")
        approve = await http.post(
            f"/api/builds/{build_id}/approve",
            json={"approved": True},
            headers={"X-Request-ID": "req-approve"},
        )
        assert approve.status_code == 200, approve.text
        await api_status(http, build_id, "in_review")
        said = await http.post(
            f"/api/builds/{build_id}/feedback",
            json={"body": "Also accept underscores."},
            headers={"X-Request-ID": "req-feedback"},
        )
        assert said.status_code == 202, said.text
        await _iteration_published(http, build_id)

    assert _activity_line(logs.events("sandbox opened"), build_id) == {
        "request_id": "req-approve",  # the sandbox opens after the approval (an update)
        "build_id": build_id,
        "workflow_id": build_workflow_id(build_id),
        "activity": "open_sandbox",
        "attempt": 1,
    }
    assert _activity_line(logs.events("iteration published"), build_id)["request_id"] == (
        "req-feedback"  # the feedback (a signal) caused the iteration
    )
    planned = await _scheduled_request_ids(env, build_id)
    assert planned["plan"] == {"req-start"}
    assert planned["publish"] == {"req-approve"}
    assert planned["publish_iteration"] == {"req-feedback"}
    # A history whose commands carry the header replays with the interceptor in the Replayer.
    assert await replay_runs(env.client, build_workflow_id(build_id)) == 1
    # The API's own lines of those requests carry the same ids.
    assert {"req-start", "req-approve", "req-feedback"} <= {
        line["request_id"] for line in logs.events("request")
    }


async def _iteration_published(http: httpx.AsyncClient, build_id: str) -> None:
    for _ in range(600):
        build = (await http.get(f"/api/builds/{build_id}")).json()
        if build["iterations"] and build["iterations"][-1]["status"] != "running":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"no iteration was published: {build}")


def _activity_line(lines: list[dict[str, Any]], build_id: str) -> dict[str, Any]:
    [line] = [line for line in lines if line.get("build_id") == build_id][:1]
    keys = ("request_id", "build_id", "workflow_id", "activity", "attempt")
    return {key: line.get(key) for key in keys}


async def _scheduled_request_ids(env: WorkflowEnvironment, build_id: str) -> dict[str, set[str]]:
    """Each activity type's correlation ids, as its scheduled events carry them in history."""
    handle = env.client.get_workflow_handle(build_workflow_id(build_id))
    found: dict[str, set[str]] = {}
    for event in (await handle.fetch_history()).events:
        if event.event_type != EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            continue
        attributes = event.activity_task_scheduled_event_attributes
        payload = attributes.header.fields.get(HEADER)
        rid = PayloadConverter.default.from_payload(payload, str) if payload else None
        found.setdefault(attributes.activity_type.name, set()).add(str(rid))
    return found
