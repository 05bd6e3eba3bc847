"""The service's own Prometheus metrics, recorded where things happen and nowhere else.

The API counts the builds it starts; a worker's activities record phase changes, model calls
(where the ledger row is written, so a journaled retry never counts twice) and sandbox runs.
They live in prometheus-client's default registry, which each process serves: the API at
`GET /metrics`, a worker on COFOUNDER_WORKER_METRICS_PORT.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Protocol, TypeVar, cast

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, start_http_server

from cofounder.payloads import BuildStatus, Usage

log = structlog.get_logger()

# A phase lasts from milliseconds (a bookkeeping step) to days (a pull request in review).
PHASE_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 14_400, 86_400)
SANDBOX_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
# The outcomes a build is counted under, each at most once per build: `in_review` ends the
# first pass; a review session then ends merged, closed or expired.
OUTCOMES = frozenset(
    {
        BuildStatus.SUCCEEDED,
        BuildStatus.IN_REVIEW,
        BuildStatus.MERGED,
        BuildStatus.CLOSED,
        BuildStatus.EXPIRED,
        BuildStatus.FAILED,
        BuildStatus.CANCELLED,
    }
)

BUILDS_STARTED = Counter("cofounder_builds_started", "Builds admitted and started by the API.")
BUILDS_ENDED = Counter(
    "cofounder_builds_ended", "Builds that reached an outcome, once per build.", ["outcome"]
)
PHASE_SECONDS = Histogram(
    "cofounder_build_phase_seconds",
    "Time a build spent in a status until its next one.",
    ["phase"],
    buckets=PHASE_BUCKETS,
)
MODEL_CALLS = Counter("cofounder_model_calls", "Paid model calls (ledger rows).", ["model", "role"])
MODEL_TOKENS = Counter(
    "cofounder_model_tokens",
    "Tokens of paid model calls; kind: input, output, cache_write, cache_read.",
    ["model", "role", "kind"],
)
MODEL_COST = Counter("cofounder_model_cost_usd", "Cost of paid model calls.", ["model", "role"])
SANDBOX_SECONDS = Histogram(
    "cofounder_sandbox_run_seconds",
    "Wall time of commands run in sandboxes; purpose: install, test, tool or other.",
    ["runtime", "purpose"],
    buckets=SANDBOX_BUCKETS,
)


def build_started() -> None:
    BUILDS_STARTED.inc()


def model_called(model: str, role: str, usage: Usage) -> None:
    """One paid call: call after its ledger row was written for the first time."""
    MODEL_CALLS.labels(model, role).inc()
    tokens = {
        "input": usage.input_tokens,
        "output": usage.output_tokens,
        "cache_write": usage.cache_creation_input_tokens,
        "cache_read": usage.cache_read_input_tokens,
    }
    for kind, count in tokens.items():
        MODEL_TOKENS.labels(model, role, kind).inc(count)
    MODEL_COST.labels(model, role).inc(usage.cost_micro_usd / 1_000_000)


def phase_moved(
    left: str | None, since: datetime | None, status: BuildStatus, at: datetime, first: bool
) -> None:
    """A build moved from `left` (entered at `since`) to `status` at `at`; `first` when no
    earlier event of this build had `status` (asked only of outcomes)."""
    if left is not None and since is not None:
        PHASE_SECONDS.labels(left).observe(max((at - since).total_seconds(), 0.0))
    if first and status in OUTCOMES:
        BUILDS_ENDED.labels(status.value).inc()


class _Purposed(Protocol):
    @property
    def purpose(self) -> str: ...


Run = TypeVar("Run", bound=Callable[..., Awaitable[Any]])


def timed_sandbox_run(runtime: str) -> Callable[[Run], Run]:
    """Decorates a sandbox session's `run(command, ...)`: its wall time is recorded under the
    runtime and the command's purpose, however it ends."""

    def wrap(run: Run) -> Run:
        @functools.wraps(run)
        async def timed(self: Any, command: _Purposed, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return await run(self, command, *args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                SANDBOX_SECONDS.labels(runtime, command.purpose).observe(elapsed)

        return cast(Run, timed)

    return wrap


def serve(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> Callable[[], None]:
    """Serve the registry over HTTP in a thread; the function that stops it. Port 0 serves
    nothing, and a port already taken is logged, not fatal: metrics never stop a worker."""
    if port == 0:
        return lambda: None
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as err:
        log.warning("metrics not served: the port is taken", host=host, port=port, error=str(err))
        return lambda: None
    log.info("metrics served", url=f"http://{host}:{port}/metrics")

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
