"""Metrics put to CloudWatch, through boto3, against moto's server."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import httpx
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from cofounder import cloudwatch
from cofounder.cloudwatch import BATCH, CloudWatchPublisher
from cofounder.settings import Settings

Sessions = async_sessionmaker[AsyncSession]


@pytest.fixture
def client(s3_endpoint: str, aws: None) -> Any:
    """boto3's CloudWatch client on moto's server (the one the S3 tests use: it serves both)."""
    return boto3.client("cloudwatch", endpoint_url=s3_endpoint)


@pytest.fixture
def namespace() -> str:
    return f"cofounder-test-{uuid.uuid4().hex[:8]}"


def statistics(client: Any, namespace: str, name: str, **dimensions: str) -> dict[str, float]:
    """The metric's statistics over the last ten minutes, as one datapoint."""
    now = datetime.now(UTC)
    answer = client.get_metric_statistics(
        Namespace=namespace,
        MetricName=name,
        Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()],
        StartTime=now - timedelta(minutes=5),
        EndTime=now + timedelta(minutes=5),
        Period=600,
        Statistics=["Sum", "SampleCount", "Minimum", "Maximum"],
    )
    points = answer["Datapoints"]
    assert len(points) == 1, points
    return {k: v for k, v in points[0].items() if isinstance(v, float)}


def listed(client: Any, namespace: str) -> set[tuple[str, tuple[tuple[str, str], ...]]]:
    """Every metric name and its dimensions (moto lists one entry per datum; CloudWatch one)."""
    pages = client.get_paginator("list_metrics").paginate(Namespace=namespace)
    return {
        (m["MetricName"], tuple(sorted((d["Name"], d["Value"]) for d in m["Dimensions"])))
        for page in pages
        for m in page["Metrics"]
    }


def test_counters_go_as_increases_and_what_did_not_move_is_not_put(
    client: Any, namespace: str
) -> None:
    registry = CollectorRegistry()
    calls = Counter("cofounder_model_calls", "calls", ["model", "role"], registry=registry)
    Counter("process_things", "not ours: never put", registry=registry).inc()
    publisher = CloudWatchPublisher(client, namespace, registry)

    calls.labels("claude-sonnet-4-6", "coder").inc(3)
    assert publisher.put() == 1
    calls.labels("claude-sonnet-4-6", "coder").inc(2)
    assert publisher.put() == 1
    assert publisher.put() == 0  # nothing moved

    coder = {"model": "claude-sonnet-4-6", "role": "coder"}
    stats = statistics(client, namespace, "cofounder_model_calls_total", **coder)
    assert (stats["Sum"], stats["SampleCount"]) == (5.0, 2.0)  # 3, then 2 more
    assert listed(client, namespace) == {
        ("cofounder_model_calls_total", tuple(sorted(coder.items())))
    }


def test_histograms_go_as_statistic_sets_and_gauges_as_values(client: Any, namespace: str) -> None:
    registry = CollectorRegistry()
    phases = Histogram(
        "cofounder_build_phase_seconds", "phases", ["phase"], buckets=(1, 5, 10), registry=registry
    )
    slots = Gauge("temporal_worker_task_slots_available", "slots", registry=registry)
    publisher = CloudWatchPublisher(client, namespace, registry)

    for seconds in (2.0, 3.0, 4.0):
        phases.labels("coding").observe(seconds)
    slots.set(7)
    publisher.put()
    phases.labels("coding").observe(30.0)  # past the last bound: its maximum is the sum
    publisher.put()

    coding = statistics(client, namespace, "cofounder_build_phase_seconds", phase="coding")
    assert (coding["SampleCount"], coding["Sum"]) == (4.0, 39.0)
    # The edges of the buckets hit: (1, 5] the first round, (10, +Inf) the second.
    assert (coding["Minimum"], coding["Maximum"]) == (1.0, 30.0)
    gauge = statistics(client, namespace, "temporal_worker_task_slots_available")
    assert gauge["Sum"] == 14.0  # 7, put each round


def test_many_series_go_in_batches_within_cloudwatchs_limits(client: Any, namespace: str) -> None:
    registry = CollectorRegistry()
    many = Counter("cofounder_things", "things", ["n"], registry=registry)
    for n in range(BATCH * 2 + 5):
        many.labels(str(n)).inc()
    sizes: list[int] = []
    put = client.put_metric_data

    def counting(**kwargs: Any) -> Any:
        sizes.append(len(kwargs["MetricData"]))
        return put(**kwargs)

    client.put_metric_data = counting
    assert CloudWatchPublisher(client, namespace, registry).put() == BATCH * 2 + 5
    assert sizes == [BATCH, BATCH, 5] and BATCH <= 1000
    assert len(listed(client, namespace)) == BATCH * 2 + 5


def test_a_failed_put_is_put_again_next_round(client: Any, namespace: str) -> None:
    registry = CollectorRegistry()
    calls = Counter("cofounder_model_calls", "calls", registry=registry)
    publisher = CloudWatchPublisher(client, namespace, registry)
    calls.inc(4)
    put = client.put_metric_data
    client.put_metric_data = lambda **_: (_ for _ in ()).throw(ConnectionError("down"))
    with pytest.raises(ConnectionError):
        publisher.put()
    client.put_metric_data = put
    calls.inc(1)

    assert publisher.put() == 1
    assert statistics(client, namespace, "cofounder_model_calls_total")["Sum"] == 5.0


async def test_the_api_puts_its_metrics_in_the_background(
    settings: Settings,
    sessions: Sessions,
    env: WorkflowEnvironment,
    client: Any,
    namespace: str,
    s3_endpoint: str,
) -> None:
    configured = settings.model_copy(
        update={
            "cloudwatch_namespace": namespace,
            "cloudwatch_endpoint_url": s3_endpoint,
            "cloudwatch_every_seconds": 0.2,
        }
    )
    app = create_app(configured, client=env.client)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            started = await http.post("/api/builds", json={"project": "demo", "goal": "a CLI"})
            assert started.status_code == 202, started.text
        # The process's counter from its start: the first put sends all of it.
        expected = REGISTRY.get_sample_value("cofounder_builds_started_total")
        assert expected is not None and expected >= 1
        deadline = time.monotonic() + 10
        while not client.list_metrics(Namespace=namespace)["Metrics"]:
            assert time.monotonic() < deadline, "nothing was put"
            await asyncio.sleep(0.1)
    stats = statistics(client, namespace, "cofounder_builds_started_total")
    assert stats["Sum"] == expected


async def test_without_a_namespace_nothing_is_published(settings: Settings) -> None:
    async with cloudwatch.publishing(settings) as publisher:
        assert publisher is None
