"""What starting a build costs through our API, against Temporal's own HTTP API and a bare SDK
call starting the same workflow, side by side in one run.

Three sides, in alternating batches, each starting `BuildWorkflow` with the input, task queue,
search attributes and memo the API gives it, on a task queue no worker polls:
(a) `POST /api/builds` over HTTP (uvicorn in a thread, a keep-alive `httpx.Client`);
(b) Temporal's HTTP API, `POST /api/v1/namespaces/{ns}/workflows/{id}` on the dev server's
    `--http-port`, over a keep-alive `httpx.Client`, the input encoded as the pydantic data
    converter does (a `json/plain` payload, base64 in the JSON body);
(c) `client.start_workflow` (gRPC through the SDK).

    .venv/bin/python -m bench.bench_start [--requests M]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import httpx
from google.protobuf.json_format import MessageToDict
from temporalio.api.common.v1 import Memo, Payloads, WorkflowType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import StartWorkflowExecutionRequest
from temporalio.client import Client
from temporalio.common import TypedSearchAttributes
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import encode_search_attributes

from api import creation
from api.admission import Admission
from api.main import create_app
from api.schemas.builds import BuildCreate
from bench.local_stack import bench_settings, local_temporal
from cofounder.logging import configure_logging
from cofounder.payloads import LOCAL_OWNER, BuildInput
from cofounder.settings import Settings
from tests.conftest import ServerThread, free_port
from tests.helpers import GOAL
from workflows.build import WORKFLOW_NAME, BuildWorkflow

WARMUP = 10  # requests per side before measuring: connections, imports and caches settle
BATCH = 20  # requests per side per turn; the order of the sides rotates every turn
TERMINATE_CONCURRENCY = 50
PROJECT = "demo"
SIDES = ("api", "http", "raw")
LABELS = {
    "api": "POST /api/builds",
    "http": "Temporal HTTP API start",
    "raw": "raw start_workflow",
}

Batch = tuple[list[float], list[str]]  # latencies in seconds, workflow ids started


def same_start(settings: Settings) -> tuple[str, BuildInput, TypedSearchAttributes]:
    """A new workflow id, and the input and search attributes the API would start it with for
    the local user (dev auth, no plan limit)."""
    tier = settings.local_tier
    budget = round(settings.plan(tier).build_budget_usd * 1e6)
    admission = Admission(tier=tier, budget_micro_usd=budget)
    build = creation.new_build(LOCAL_OWNER, 0, BuildCreate(project=PROJECT, goal=GOAL), admission)
    payload = creation.workflow_input(settings, build, PROJECT, admission, None)
    return build.workflow_id, payload, creation.start_attributes(PROJECT, LOCAL_OWNER)


def api_batch(http: httpx.Client, count: int) -> Batch:
    """`count` sequential POSTs (blocking; run in a thread): latencies and workflow ids."""
    latencies, ids = [], []
    for _ in range(count):
        began = time.perf_counter()
        response = http.post("/api/builds", json={"project": PROJECT, "goal": GOAL})
        latencies.append(time.perf_counter() - began)
        response.raise_for_status()
        ids.append(response.json()["workflow_id"])
    return latencies, ids


def start_request(
    settings: Settings, workflow_id: str, payload: BuildInput, attributes: TypedSearchAttributes
) -> dict[str, object]:
    """The JSON body of Temporal's HTTP API start: the SDK's request, as protobuf JSON."""
    converter = pydantic_data_converter.payload_converter
    request = StartWorkflowExecutionRequest(
        namespace=settings.temporal_namespace,
        workflow_id=workflow_id,
        workflow_type=WorkflowType(name=WORKFLOW_NAME),
        task_queue=TaskQueue(name=settings.task_queue),
        input=Payloads(payloads=converter.to_payloads([payload])),
        memo=Memo(fields={"request_id": converter.to_payload(uuid.uuid4().hex)}),
        identity="bench",
        request_id=str(uuid.uuid4()),
    )
    encode_search_attributes(attributes, request.search_attributes)
    return MessageToDict(request)


def http_api_batch(http: httpx.Client, settings: Settings, count: int) -> Batch:
    """`count` sequential starts through Temporal's HTTP API (blocking; run in a thread)."""
    latencies, ids = [], []
    for _ in range(count):
        workflow_id, payload, attributes = same_start(settings)
        path = f"/api/v1/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"
        began = time.perf_counter()
        body = start_request(settings, workflow_id, payload, attributes)
        response = http.post(path, json=body)
        latencies.append(time.perf_counter() - began)
        response.raise_for_status()
        ids.append(workflow_id)
    return latencies, ids


async def raw_batch(client: Client, settings: Settings, count: int) -> Batch:
    """`count` sequential starts through the SDK, shaped exactly like the API's."""
    latencies, ids = [], []
    for _ in range(count):
        workflow_id, payload, attributes = same_start(settings)
        began = time.perf_counter()
        handle = await client.start_workflow(
            BuildWorkflow.run,
            payload,
            id=workflow_id,
            task_queue=settings.task_queue,
            search_attributes=attributes,
            memo={"request_id": uuid.uuid4().hex},
            rpc_timeout=creation.START_TIMEOUT,
        )
        latencies.append(time.perf_counter() - began)
        ids.append(handle.id)
    return latencies, ids


async def verify_http_start(client: Client, settings: Settings, http: httpx.Client) -> str:
    """Start one workflow through the HTTP API and check, through the SDK, that it is the
    workflow the API would start: its type, queue, search attributes and decoded input."""
    workflow_id, payload, attributes = same_start(settings)
    path = f"/api/v1/namespaces/{settings.temporal_namespace}/workflows/{workflow_id}"
    body = start_request(settings, workflow_id, payload, attributes)
    (await asyncio.to_thread(http.post, path, json=body)).raise_for_status()
    handle = client.get_workflow_handle(workflow_id)
    described = await handle.describe()
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    [sent] = await client.data_converter.decode(started.input.payloads, [BuildInput])
    checks = {
        "workflow type": described.workflow_type == WORKFLOW_NAME,
        "task queue": described.task_queue == settings.task_queue,
        "search attributes": all(
            described.typed_search_attributes.get(pair.key) == pair.value for pair in attributes
        ),
        "input": sent == payload,
    }
    wrong = [name for name, ok in checks.items() if not ok]
    if wrong:
        raise RuntimeError(f"the HTTP API started {workflow_id} with another {', '.join(wrong)}")
    return workflow_id


async def bench_starts(
    client: Client, settings: Settings, http_api: str, requests: int
) -> dict[str, list[float]]:
    """Latencies of each side, interleaved in batches; every started workflow is ended."""
    results: dict[str, list[float]] = {side: [] for side in SIDES}
    started: list[str] = []
    with (
        ServerThread(create_app(settings, client=client)) as server,
        httpx.Client(base_url=server.url, timeout=30) as ours,
        httpx.Client(base_url=http_api, timeout=30) as theirs,
    ):
        batches: dict[str, Callable[[int], Awaitable[Batch]]] = {
            "api": partial(asyncio.to_thread, api_batch, ours),
            "http": partial(asyncio.to_thread, http_api_batch, theirs, settings),
            "raw": partial(raw_batch, client, settings),
        }
        try:
            started.append(await verify_http_start(client, settings, theirs))
            for side in SIDES:
                started += (await batches[side](WARMUP))[1]
            for turn in range(math.ceil(requests / BATCH)):
                size = min(BATCH, requests - turn * BATCH)
                # Rotating who goes first keeps drift (GC, the server's own work) even.
                for side in SIDES[turn % 3 :] + SIDES[: turn % 3]:
                    got, ids = await batches[side](size)
                    results[side] += got
                    started += ids
        finally:
            await terminate(client, started)
    return results


async def terminate(client: Client, workflow_ids: list[str]) -> None:
    """End the queued workflows this run started, a bounded number at a time."""
    for i in range(0, len(workflow_ids), TERMINATE_CONCURRENCY):
        chunk = workflow_ids[i : i + TERMINATE_CONCURRENCY]
        await asyncio.gather(
            *(client.get_workflow_handle(w).terminate(reason="benchmark done") for w in chunk)
        )


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def start_rows(results: dict[str, list[float]]) -> list[tuple[str, str]]:
    """Report rows: each side's p50 and p99 (ms), then ours against each of the others."""
    p50 = {side: percentile(results[side], 50) * 1e3 for side in SIDES}
    p99 = {side: percentile(results[side], 99) * 1e3 for side in SIDES}
    rows = []
    for side in SIDES:
        figures = f"p50 {p50[side]:5.1f}ms   p99 {p99[side]:5.1f}ms"
        rows.append((f"{LABELS[side]} ({len(results[side])})", figures))
    for other, name in (("http", "HTTP API"), ("raw", "raw")):
        ratios = f"p50 {p50['api'] / p50[other]:5.2f}x    p99 {p99['api'] / p99[other]:5.2f}x"
        rows.append((f"ratio API/{name}", ratios))
    return rows


def print_rows(rows: list[tuple[str, str]]) -> None:
    print()
    for label, figures in rows:
        print(f"{label:<31}{figures}")


async def run(requests: int) -> None:
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="cofounder-bench-") as tmp:
        settings = await bench_settings(Path(tmp) / "data")
        port = free_port()
        async with local_temporal(http_port=port) as env:
            print(f"timing {requests} starts per side ...", flush=True)
            # No worker polls this queue: started builds stay queued until terminated.
            idle = settings.model_copy(update={"task_queue": f"bench-idle-{uuid.uuid4().hex[:8]}"})
            results = await bench_starts(env.client, idle, f"http://127.0.0.1:{port}", requests)
    print_rows(start_rows(results))
    print(
        "\nThe API side also admits the build and writes its build row (SQLite); the other two\n"
        "start the same workflow and write nothing else."
    )
    print(f"\ntotal run {time.perf_counter() - began:.1f}s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="starts per side (default 200)")
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    configure_logging(json=False, level=logging.WARNING)
    asyncio.run(run(args.requests))


if __name__ == "__main__":
    main()
