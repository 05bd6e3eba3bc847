"""The worker: wires clients into activities and serves the build's task queues.

More capacity is more of these processes on the same task queues; Temporal does the rest.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig

from activities.agent.turns import AgentActivities
from activities.billing.metering import MeterActivities
from activities.billing.stripe_api import StripeBilling
from activities.builds import BuildRecordActivities
from activities.github.app import github_app
from activities.heartbeat import HeartbeatInterceptor
from activities.llm import LlmActivities, make_anthropic_client
from activities.memory import MemoryActivities
from activities.publish import PublishActivities
from activities.review_session import SessionActivities
from activities.sandbox import SandboxRuntime
from activities.sandbox.activities import SandboxActivities
from activities.sandbox.local import LocalRuntime
from activities.sandbox.sweep import sweep_orphans
from cofounder import cloudwatch, metrics
from cofounder.artifacts import open_store
from cofounder.db import make_engine, make_sessionmaker
from cofounder.logging import register_secrets
from cofounder.memory.stores import open_memory
from cofounder.metering_schedule import ensure_metering_schedule
from cofounder.settings import Settings
from cofounder.temporal import connect
from cofounder.temporal_metrics import TemporalMetrics
from workflows.build import BuildWorkflow
from workflows.metering import MeteringWorkflow
from workflows.queues import QueueKind, kind_of, queue_name

log = structlog.get_logger()

# How long a build's next workflow task waits for the worker that cached it before any worker
# takes it: short, so a dead worker's builds move on quickly (the default is 10 s).
STICKY_TIMEOUT = timedelta(seconds=3)
# Heartbeats leave the worker at least this often (the SDK's default throttle is 80% of the
# heartbeat timeout), so a live step is never mistaken for a dead one under load.
HEARTBEAT_THROTTLE = timedelta(seconds=1)
# How often a worker closes the sandboxes of builds that ended without closing them. Each
# worker sweeps, since a local runtime's sessions live on its own disk.
SWEEP_INTERVAL = timedelta(minutes=10)


def build_activities(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> list[Callable[..., Any]]:
    """Every activity of a build, bound to the clients and stores it needs."""
    store = open_store(settings)
    client = make_anthropic_client(settings)
    runtime = sandbox_runtime(settings)
    github = github_app(settings)
    llm = LlmActivities(client, settings, store, sessions, github)
    agent = AgentActivities(client, settings, store, sessions, runtime)
    sandbox = SandboxActivities(settings, store, runtime, github, sessions)
    publish = PublishActivities(settings, store, sessions, github)
    review_session = SessionActivities(settings, store, sessions, github)
    records = BuildRecordActivities(sessions)
    memory = MemoryActivities(open_memory(settings, sessions), store, settings)
    return billing_activities(settings, sessions) + [
        llm.plan,
        llm.write_code,
        llm.debug,
        llm.review,
        agent.model_turn,
        agent.run_tools,
        sandbox.open_sandbox,
        sandbox.run_tests,
        sandbox.close_sandbox,
        publish.publish,
        review_session.gather_feedback,
        review_session.publish_iteration,
        records.record_status,
        records.record_cost,
        memory.recall,
        memory.remember,
    ]


def billing_activities(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> list[Callable[..., Any]]:
    """Usage sent to Stripe as meter events, when Stripe bills this deployment."""
    stripe = StripeBilling.from_settings(settings)
    if stripe is None:
        return []
    return [MeterActivities(sessions, stripe, settings).send_meter_events]


def sandbox_runtime(settings: Settings) -> SandboxRuntime:
    """Where builds run: E2B when configured, else bubblewrap on this worker."""
    if settings.sandbox == "e2b":
        from activities.sandbox.e2b import E2BRuntime  # the SDK is imported only when used

        return E2BRuntime(settings)
    return LocalRuntime(settings)


def create_workers(
    client: Client, settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> list[Worker]:
    """One worker for each queue this process serves (`COFOUNDER_WORKER_QUEUES`), each with
    the activities of its kind; the workflows run on the base queue."""
    activities = build_activities(settings, sessions)
    return [
        Worker(
            client,
            task_queue=queue_name(settings.task_queue, kind),
            # An activity's name is its method's, on both sides: here and in the workflow.
            activities=[act for act in activities if kind_of(act.__name__) == kind],
            workflows=_workflows(settings) if kind == "workflows" else [],
            **_limits(settings, kind),
            **_common(settings),
        )
        for kind in settings.worker_queues
    ]


def _workflows(settings: Settings) -> list[type]:
    return [BuildWorkflow, MeteringWorkflow] if settings.billing else [BuildWorkflow]


def _limits(settings: Settings, kind: QueueKind) -> dict[str, Any]:
    if kind == "models" and settings.model_calls_per_second is not None:
        # Enforced by the server for every worker of the queue: the fleet's rate, not ours.
        return {"max_task_queue_activities_per_second": settings.model_calls_per_second}
    if kind == "sandbox":
        return {"max_concurrent_activities": settings.sandbox_concurrency}
    return {}


def _common(settings: Settings) -> dict[str, Any]:
    """What every worker of the process shares: its timing, interceptors and version."""
    return {
        "sticky_queue_schedule_to_start_timeout": STICKY_TIMEOUT,
        "max_heartbeat_throttle_interval": HEARTBEAT_THROTTLE,
        "default_heartbeat_throttle_interval": HEARTBEAT_THROTTLE,
        "interceptors": [HeartbeatInterceptor()],
        "max_cached_workflows": settings.worker_cached_workflows,
        "graceful_shutdown_timeout": timedelta(seconds=settings.worker_grace_seconds),
        "deployment_config": deployment_config(settings),
    }


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """With a deployment name, this worker is one version of it, and each build stays pinned
    to the version it started on: a deploy never changes the code under a running build."""
    if settings.deployment_name is None or settings.build_id is None:
        return None
    return WorkerDeploymentConfig(
        version=WorkerDeploymentVersion(settings.deployment_name, settings.build_id),
        use_worker_versioning=True,
        default_versioning_behavior=VersioningBehavior.PINNED,
    )


@asynccontextmanager
async def running_worker(client: Client, settings: Settings) -> AsyncIterator[list[Worker]]:
    """This process's started workers, with their own database engine, shut down together
    (each drains within the grace period) on exit."""
    engine = make_engine(settings.resolved_database_url)
    try:
        async with AsyncExitStack() as stack:
            workers = create_workers(client, settings, make_sessionmaker(engine))
            for worker in workers:
                await stack.enter_async_context(worker)
            try:
                yield workers
            finally:
                # Every queue stops polling at once; one after another, the last would still
                # take new work while the first drains.
                await asyncio.gather(*(worker.shutdown() for worker in workers))
    finally:
        await engine.dispose()


async def main(settings: Settings | None = None) -> None:
    """Run a worker until SIGINT or SIGTERM."""
    settings = settings or Settings()
    register_secrets(settings)  # its secrets are masked in every log line from here on
    temporal_metrics = TemporalMetrics()  # the SDK's metrics, beside ours in the registry
    client = await connect(settings, runtime=temporal_metrics.runtime)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if settings.billing:
        await ensure_metering_schedule(client, settings)
    async with running_worker(client, settings), serving_metrics(settings, temporal_metrics):
        log.info(
            "worker started",
            task_queues=[queue_name(settings.task_queue, kind) for kind in settings.worker_queues],
            build_id=settings.build_id,
            model_url=settings.model_base_url,
        )
        sweeping = asyncio.create_task(_sweep_forever(sandbox_runtime(settings), client))
        await stop.wait()
        sweeping.cancel()
        # Leaving the block stops polling and gives running activities the grace period.
        log.info("worker draining", grace_seconds=settings.worker_grace_seconds)
    log.info("worker stopped")


@asynccontextmanager
async def serving_metrics(settings: Settings, temporal: TemporalMetrics) -> AsyncIterator[None]:
    """While the block runs: Temporal's metrics drained into the registry, which is served on
    the worker's metrics port and put to CloudWatch when a namespace is set."""
    stop_serving = metrics.serve(settings.worker_metrics_host, settings.worker_metrics_port)
    draining = asyncio.create_task(temporal.run())
    try:
        async with cloudwatch.publishing(settings):
            yield
    finally:
        draining.cancel()
        await asyncio.to_thread(stop_serving)


async def _sweep_forever(runtime: SandboxRuntime, client: Client) -> None:
    while True:
        try:
            await sweep_orphans(runtime, client)
        except Exception:  # housekeeping: the next round tries again
            log.exception("sandbox sweep failed")
        await asyncio.sleep(SWEEP_INTERVAL.total_seconds())
