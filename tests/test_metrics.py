"""Prometheus metrics: a real build through the API and a worker, then both scrape targets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

import activities.journal
from activities.builds import BuildRecordActivities
from activities.llm import LlmActivities, make_anthropic_client
from cofounder import metrics
from cofounder.artifacts import ArtifactStore
from cofounder.db import Build, BuildEvent, LedgerEntry
from cofounder.db.models import as_utc, utcnow
from cofounder.payloads import BuildStatus, PlanRequest, StatusUpdate
from cofounder.settings import Settings
from cofounder.temporal import connect
from cofounder.temporal_metrics import TemporalMetrics
from tests.conftest import free_port
from tests.helpers import api_status, env_for, insert_build, model_stats
from worker import running_worker

Sessions = async_sessionmaker[AsyncSession]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, tags), v in samples.items() if n == name and wanted <= tags)


def registry_now() -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
    }


@pytest.fixture
def temporal_metrics() -> Iterator[TemporalMetrics]:
    """The worker's Temporal runtime, its metrics in the process's registry."""
    bridged = TemporalMetrics()
    yield bridged
    bridged.close()


@pytest_asyncio.fixture
async def metered_worker(
    env: WorkflowEnvironment, settings: Settings, temporal_metrics: TemporalMetrics
) -> AsyncIterator[list[Worker]]:
    """A worker like `cofounder worker`'s: its client on the runtime whose metrics we read."""
    address = env.client.service_client.config.target_host
    client = await connect(
        settings.model_copy(update={"temporal_address": address}), runtime=temporal_metrics.runtime
    )
    async with running_worker(client, settings) as running:
        yield running


@pytest.fixture
def worker_metrics_url() -> Iterator[str]:
    """The worker's metrics server, as `cofounder worker` serves it."""
    port = free_port()
    stop = metrics.serve("127.0.0.1", port)
    yield f"http://127.0.0.1:{port}/metrics"
    stop()


async def ledger_of(sessions: Sessions, build_id: str) -> list[LedgerEntry]:
    async with sessions() as session:
        query = select(LedgerEntry).where(LedgerEntry.build_id == build_id)
        return list(await session.scalars(query))


async def events_of(sessions: Sessions, build_id: str) -> list[BuildEvent]:
    async with sessions() as session:
        query = select(BuildEvent).where(BuildEvent.build_id == build_id).order_by(BuildEvent.at)
        return list(await session.scalars(query))


async def scrape_after_ending(
    url: str, temporal_metrics: TemporalMetrics, before: Samples, wait: float = 5
) -> Samples:
    """The worker's metrics once they count one more build in review: the worker counts the
    ending just after committing it, so the API may show the status a moment earlier."""
    deadline = time.monotonic() + wait
    ended = ("cofounder_builds_ended_total",)
    while True:
        temporal_metrics.drain()
        async with httpx.AsyncClient() as scraper:
            scraped = await scraper.get(url)
        assert scraped.headers["content-type"].startswith("text/plain")
        worker = parse(scraped.text)
        counted = total(worker, *ended, outcome="in_review") > total(
            before, *ended, outcome="in_review"
        )
        if counted or time.monotonic() > deadline:  # past the wait, the assertions say what lacks
            return worker
        await asyncio.sleep(0.05)


async def test_a_build_is_counted_by_the_api_and_the_worker(
    http: httpx.AsyncClient,
    metered_worker: Worker,
    temporal_metrics: TemporalMetrics,
    worker_metrics_url: str,
    sessions: Sessions,
    settings: Settings,
) -> None:
    before = parse((await http.get("/metrics")).text)
    started = await http.post("/api/builds", json={"project": "demo", "goal": "a slug CLI"})
    build_id = started.json()["id"]
    await api_status(http, build_id, "in_review", timeout=120)

    api = parse((await http.get("/metrics")).text)
    worker = await scrape_after_ending(worker_metrics_url, temporal_metrics, before)

    def delta(name: str, **labels: str) -> float:
        return total(worker, name, **labels) - total(before, name, **labels)

    assert (
        total(api, "cofounder_builds_started_total")
        - total(before, "cofounder_builds_started_total")
        == 1
    )
    rows = await ledger_of(sessions, build_id)
    assert delta("cofounder_model_calls_total") == len(rows) > 0
    cost = sum(row.cost_micro_usd for row in rows) / 1_000_000
    assert delta("cofounder_model_cost_usd_total") == pytest.approx(cost, abs=1e-9)
    assert delta("cofounder_model_tokens_total", kind="output") == sum(
        r.output_tokens for r in rows
    )
    coder = settings.model_coder
    assert delta("cofounder_model_calls_total", model=coder, role="coder") == sum(
        1 for row in rows if row.role == "coder"
    )

    # One observation per phase change, together spanning the build's life until in review.
    events = await events_of(sessions, build_id)
    assert delta("cofounder_build_phase_seconds_count") == len(events)
    assert delta("cofounder_build_phase_seconds_count", phase="testing") >= 1
    async with sessions() as session:
        build = await session.get(Build, build_id)
        assert build is not None
        span = (as_utc(events[-1].at) - as_utc(build.created_at)).total_seconds()
    assert delta("cofounder_build_phase_seconds_sum") == pytest.approx(span, abs=0.01)
    assert delta("cofounder_builds_ended_total", outcome="in_review") == 1

    test_runs = sum(1 for event in events if event.status == "testing")
    assert (
        delta("cofounder_sandbox_run_seconds_count", runtime="local", purpose="test") == test_runs
    )
    assert delta("cofounder_sandbox_run_seconds_sum", runtime="local", purpose="test") > 0
    assert delta("cofounder_sandbox_run_seconds_count", purpose="tool") >= 1

    # Temporal's own runtime metrics, under the SDK's names, for this worker's task queue.
    queue = {"task_queue": settings.task_queue}
    assert total(worker, "temporal_activity_schedule_to_start_latency_count", **queue) >= len(rows)
    assert total(worker, "temporal_workflow_task_schedule_to_start_latency_count", **queue) > 0
    assert total(worker, "temporal_request_total") > 0


async def test_a_journaled_retry_counts_its_call_once(
    settings: Settings,
    store: ArtifactStore,
    sessions: Sessions,
    offline_model: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    llm = LlmActivities(make_anthropic_client(settings), settings, store, sessions)
    build_id = await insert_build(sessions)
    request = PlanRequest(build_id=build_id, project="demo", goal="a slug CLI")
    labels = {"model": settings.model_architect, "role": "architect"}

    def calls() -> float:
        return total(registry_now(), "cofounder_model_calls_total", **labels)

    def cost() -> float:
        return total(registry_now(), "cofounder_model_cost_usd_total", **labels)

    first_calls, first_cost = calls(), cost()
    ledger_write = activities.journal.record_call

    async def database_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("database went away")

    # Paid, then the row could not be written: nothing counted yet.
    monkeypatch.setattr(activities.journal, "record_call", database_down)
    with pytest.raises(ConnectionError):
        await env_for(build_id, "plan").run(llm.plan, request)
    assert calls() == first_calls
    monkeypatch.setattr(activities.journal, "record_call", ledger_write)

    # Two retries: the journal answers both; the first writes the row and counts the call.
    for _ in range(2):
        result = await env_for(build_id, "plan").run(llm.plan, request)
    assert model_stats(offline_model)["requests"] == 1
    assert len(await ledger_of(sessions, build_id)) == 1
    assert calls() == first_calls + 1
    assert cost() - first_cost == pytest.approx(result.usage.cost_micro_usd / 1_000_000)


async def test_a_retried_phase_write_is_measured_once(sessions: Sessions) -> None:
    records = BuildRecordActivities(sessions)
    build_id = await insert_build(sessions)

    def observed(phase: str) -> float:
        return total(registry_now(), "cofounder_build_phase_seconds_count", phase=phase)

    def ended(outcome: str) -> float:
        return total(registry_now(), "cofounder_builds_ended_total", outcome=outcome)

    before = {"queued": observed("queued"), "in_review": ended("in_review")}
    update = StatusUpdate(build_id=build_id, status=BuildStatus.PLANNING, seq=1, at=utcnow())
    for _ in range(2):  # the second is a retry of the first
        await env_for(build_id, "record").run(records.record_status, update)
    assert observed("queued") == before["queued"] + 1

    # Back in review after each iteration: the build reached that outcome once.
    for seq in (2, 3, 4):
        status = BuildStatus.IN_REVIEW if seq != 3 else BuildStatus.CODING
        moved = StatusUpdate(build_id=build_id, status=status, seq=seq, at=utcnow())
        await env_for(build_id, f"record-{seq}").run(records.record_status, moved)
    assert ended("in_review") == before["in_review"] + 1


async def test_metrics_are_served_outside_the_api_schema(http: httpx.AsyncClient) -> None:
    served = await http.get("/metrics")
    assert served.status_code == 200
    assert "# TYPE cofounder_builds_started_total counter" in served.text
    assert "/metrics" not in (await http.get("/openapi.json")).json()["paths"]


def test_a_taken_port_is_logged_and_the_worker_goes_on() -> None:
    port = free_port()
    stop = metrics.serve("127.0.0.1", port)
    try:
        metrics.serve("127.0.0.1", port)()  # taken: serves nothing, raises nothing
        assert "cofounder_" in httpx.get(f"http://127.0.0.1:{port}/metrics").text
    finally:
        stop()
    metrics.serve("127.0.0.1", 0)()  # off
