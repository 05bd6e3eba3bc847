"""Temporal's own runtime metrics (the SDK core's: task latencies, slots, polls, requests) in
our Prometheus registry, under the names the SDK gives them (`temporal_...`).

The worker's `Runtime` records into a `MetricBuffer`; `TemporalMetrics.run` drains it every
second into a collector of the process's registry, so one scrape (and the CloudWatch
publisher) sees ours and Temporal's alike. A collector of our own rather than prometheus-client
metric objects: the SDK may give one metric different attribute sets, which those refuse.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_HISTOGRAM,
    BufferedMetricUpdate,
    MetricBuffer,
    MetricBufferDurationFormat,
    Runtime,
    TelemetryConfig,
)

# Updates held between two drains; the SDK drops (and logs) what does not fit.
BUFFER_SIZE = 100_000
DRAIN_EVERY_SECONDS = 1.0
# The SDK's histograms are latencies, in seconds here (MetricBufferDurationFormat.SECONDS).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, float("inf"))

Labels = tuple[tuple[str, str], ...]


@dataclass
class _Histogram:
    buckets: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    count: int = 0
    total: float = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
        for i, bound in enumerate(BUCKETS):
            if value <= bound:
                self.buckets[i] += 1


@dataclass
class _Family:
    kind: str  # a Prometheus type: counter, gauge or histogram
    help: str
    series: dict[Labels, float | _Histogram] = field(default_factory=dict)


class TemporalCollector(Collector):
    """Counters add their deltas, gauges keep their last value, histograms observe."""

    def __init__(self) -> None:
        self._families: dict[str, _Family] = {}
        self._lock = threading.Lock()  # scrapes come from the HTTP server's thread

    def apply(self, update: BufferedMetricUpdate) -> None:
        metric = update.metric
        labels = _labels(update.attributes)
        with self._lock:
            family = self._families.get(metric.name)
            if family is None:
                family = _Family(_kind(metric.kind), metric.description or metric.name)
                self._families[metric.name] = family
            value = family.series.get(labels)
            if family.kind == "histogram":
                histogram = value if isinstance(value, _Histogram) else _Histogram()
                histogram.observe(float(update.value))
                family.series[labels] = histogram
            elif family.kind == "counter" and isinstance(value, float):
                family.series[labels] = value + update.value
            else:  # a gauge, or a counter's first update
                family.series[labels] = float(update.value)

    def collect(self) -> Iterator[Metric]:
        with self._lock:  # built whole under the lock; yielded after it
            metrics = [_exposed(name, family) for name, family in self._families.items()]
        yield from metrics


def _kind(kind: int) -> str:
    if kind == BUFFERED_METRIC_KIND_COUNTER:
        return "counter"
    return "histogram" if kind == BUFFERED_METRIC_KIND_HISTOGRAM else "gauge"


def _labels(attributes: Mapping[str, str | int | float | bool]) -> Labels:
    def text(value: str | int | float | bool) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    return tuple(sorted((key, text(value)) for key, value in attributes.items()))


def _exposed(name: str, family: _Family) -> Metric:
    metric = Metric(name, family.help, family.kind)
    for labels, value in family.series.items():
        tags = dict(labels)
        if isinstance(value, _Histogram):
            for bound, count in zip(BUCKETS, value.buckets, strict=True):
                metric.add_sample(f"{name}_bucket", {**tags, "le": floatToGoString(bound)}, count)
            metric.add_sample(f"{name}_count", tags, value.count)
            metric.add_sample(f"{name}_sum", tags, value.total)
        else:
            suffix = "_total" if family.kind == "counter" else ""
            metric.add_sample(f"{metric.name}{suffix}", tags, value)
    return metric


class TemporalMetrics:
    """A Temporal `Runtime` whose metrics land in `registry`: pass `runtime` to the client."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.buffer = MetricBuffer(BUFFER_SIZE, MetricBufferDurationFormat.SECONDS)
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=self.buffer))
        self.collector = TemporalCollector()
        self.registry = registry
        registry.register(self.collector)

    def drain(self) -> int:
        """Move the buffered updates into the registry; how many there were."""
        updates = self.buffer.retrieve_updates()
        for update in updates:
            self.collector.apply(update)
        return len(updates)

    async def run(self, every: float = DRAIN_EVERY_SECONDS) -> None:
        """Drain forever (cancel to stop), often enough that the buffer never fills."""
        while True:
            self.drain()
            await asyncio.sleep(every)

    def close(self) -> None:
        self.registry.unregister(self.collector)
