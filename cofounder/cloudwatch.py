"""Our metrics put to CloudWatch, from each process (API and worker), when
COFOUNDER_CLOUDWATCH_NAMESPACE is set.

Every COFOUNDER_CLOUDWATCH_EVERY_SECONDS the registry's `cofounder_` and `temporal_` metrics are
put with boto3's `put_metric_data`, off the event loop. A metric's labels are its dimensions (at
most 30; empty values left out). Counters are put as their increase since the last put, so a
period's Sum is what happened in it and several processes' data add up; gauges as their value;
histograms as a statistic set: SampleCount and Sum since the last put, Minimum and Maximum the
edges of the buckets the new observations fell in. A series that did not move is not put; data
not accepted (CloudWatch down) are put again, with what came since, next round.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import structlog
from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import Metric

from cofounder.settings import Settings

log = structlog.get_logger()

PREFIXES = ("cofounder_", "temporal_")
MAX_DIMENSIONS = 30
MAX_DIMENSION_VALUE = 1024
# CloudWatch takes up to 1,000 data and 1 MB a request; 200 data with 30 dimensions each fit.
BATCH = 200
# At shutdown the last round gets this long, so an unreachable CloudWatch cannot hold a process.
LAST_PUT_SECONDS = 10.0

Key = tuple[str, tuple[tuple[str, str], ...]]
# A histogram series' count, sum and cumulative count per bucket bound.
HistogramState = tuple[float, float, tuple[tuple[float, float], ...]]


@dataclass(frozen=True)
class Datum:
    """One MetricDatum, and the series' cumulative state once CloudWatch has taken it."""

    key: Key
    state: float | HistogramState
    data: dict[str, Any]


class CloudWatchPublisher:
    """Puts what moved in a registry since its last put."""

    def __init__(self, client: Any, namespace: str, registry: CollectorRegistry = REGISTRY) -> None:
        self.client = client
        self.namespace = namespace
        self.registry = registry
        self._last: dict[Key, float | HistogramState] = {}
        self._lock = threading.Lock()  # a round cut short at shutdown may still be running

    def put(self) -> int:
        """One round (blocking: run it in a thread); how many data were put."""
        with self._lock:
            pending = list(self.pending(datetime.now(UTC)))
            for start in range(0, len(pending), BATCH):
                batch = pending[start : start + BATCH]
                self.client.put_metric_data(
                    Namespace=self.namespace, MetricData=[datum.data for datum in batch]
                )
                self._last.update((datum.key, datum.state) for datum in batch)
            return len(pending)

    def pending(self, now: datetime) -> Iterator[Datum]:
        for family in self.registry.collect():
            if not family.name.startswith(PREFIXES):
                continue
            if family.type == "counter":
                yield from self._counter(family, now)
            elif family.type == "histogram":
                yield from self._histograms(family, now)
            elif family.type == "gauge":
                yield from self._gauges(family, now)

    def _gauges(self, family: Metric, now: datetime) -> Iterator[Datum]:
        for sample in family.samples:
            data = _datum(sample.name, sample.labels, now, Value=sample.value, Unit="None")
            yield Datum(_key(sample.name, sample.labels), sample.value, data)

    def _counter(self, family: Metric, now: datetime) -> Iterator[Datum]:
        unit = _unit(family.name, "Count")
        for sample in family.samples:
            if not sample.name.endswith("_total"):
                continue  # `_created`: when the series began, not a value
            key = _key(sample.name, sample.labels)
            last = self._last.get(key, 0.0)
            assert isinstance(last, float | int)
            if sample.value > last:
                data = _datum(sample.name, sample.labels, now, Value=sample.value - last, Unit=unit)
                yield Datum(key, sample.value, data)

    def _histograms(self, family: Metric, now: datetime) -> Iterator[Datum]:
        for labels, state in _histogram_states(family).items():
            key = (family.name, labels)
            last = self._last.get(key)
            stats = _statistics(state, last if isinstance(last, tuple) else None)
            if stats is not None:
                unit = _unit(family.name, "None")
                data = _datum(family.name, dict(labels), now, StatisticValues=stats, Unit=unit)
                yield Datum(key, state, data)


def _key(name: str, labels: dict[str, str]) -> Key:
    return name, tuple(sorted(labels.items()))


def _unit(name: str, default: str) -> str:
    if "_seconds" in name or name.endswith("_latency"):
        return "Seconds"
    return "None" if "_usd" in name else default  # CloudWatch has no currency unit


def _datum(name: str, labels: dict[str, str], now: datetime, **values: Any) -> dict[str, Any]:
    dimensions = [
        {"Name": label, "Value": value[:MAX_DIMENSION_VALUE]}
        for label, value in sorted(labels.items())
        if value
    ]
    return {
        "MetricName": name,
        "Dimensions": dimensions[:MAX_DIMENSIONS],
        "Timestamp": now,
        **values,
    }


def _histogram_states(family: Metric) -> dict[tuple[tuple[str, str], ...], HistogramState]:
    """Each series' count, sum and cumulative bucket counts, by bucket bound."""
    parts: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for sample in family.samples:
        labels = tuple(sorted((k, v) for k, v in sample.labels.items() if k != "le"))
        part = parts.setdefault(labels, {"count": 0.0, "sum": 0.0, "buckets": []})
        if sample.name.endswith("_bucket"):
            part["buckets"].append((float(sample.labels["le"]), sample.value))
        elif sample.name.endswith("_count"):
            part["count"] = sample.value
        elif sample.name.endswith("_sum"):
            part["sum"] = sample.value
    return {
        labels: (p["count"], p["sum"], tuple(sorted(p["buckets"]))) for labels, p in parts.items()
    }


def _statistics(state: HistogramState, last: HistogramState | None) -> dict[str, float] | None:
    """A statistic set of the observations since `last`; None when there were none. Minimum
    and Maximum are the edges of the buckets they fell in (a value past the last finite bound
    is at most the Sum, observations being durations)."""
    count, total, buckets = state
    last_count, last_total, last_buckets = last or (0.0, 0.0, ())
    if count <= last_count:
        return None
    before = dict(last_buckets)
    bounds = [bound for bound, _ in buckets]
    # Cumulative counts that grew: the first is the lowest bucket hit, the first to reach the
    # new count the highest.
    grew = [cum - before.get(bound, 0.0) for bound, cum in buckets]
    low = next((i for i, n in enumerate(grew) if n > 0), 0)
    high = next((i for i, n in enumerate(grew) if n >= count - last_count), len(grew) - 1)
    new_total = total - last_total
    return {
        "SampleCount": count - last_count,
        "Sum": new_total,
        "Minimum": bounds[low - 1] if low > 0 else 0.0,
        "Maximum": bounds[high] if math.isfinite(bounds[high]) else new_total,
    }


@contextlib.asynccontextmanager
async def publishing(settings: Settings) -> AsyncIterator[CloudWatchPublisher | None]:
    """Put the registry to CloudWatch every few seconds while the block runs (nothing without
    a namespace), and once more as it ends."""
    if settings.cloudwatch_namespace is None:
        yield None
        return
    client = await asyncio.to_thread(
        boto3.client, "cloudwatch", endpoint_url=settings.cloudwatch_endpoint_url
    )
    publisher = CloudWatchPublisher(client, settings.cloudwatch_namespace)
    rounds = asyncio.create_task(_put_forever(publisher, settings.cloudwatch_every_seconds))
    try:
        yield publisher
    finally:
        rounds.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await rounds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(put_once(publisher), LAST_PUT_SECONDS)


async def put_once(publisher: CloudWatchPublisher) -> None:
    """One round, off the event loop; a failure is logged and its data wait for the next."""
    try:
        await asyncio.to_thread(publisher.put)
    except Exception as err:
        log.warning("cloudwatch put failed", error=str(err))


async def _put_forever(publisher: CloudWatchPublisher, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        await put_once(publisher)
