"""The Temporal Schedule that sends usage to Stripe: MeteringWorkflow every
COFOUNDER_METER_EVERY_SECONDS on the build task queue, never two runs at once."""

from __future__ import annotations

from datetime import timedelta

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from cofounder.payloads.billing import MeteringInput
from cofounder.settings import Settings
from workflows.metering import MeteringWorkflow


def metering_schedule_id(settings: Settings) -> str:
    """One schedule per task queue: deployments (and tests) sharing a server keep their own."""
    return f"metering-{settings.task_queue}"


def metering_schedule(settings: Settings) -> Schedule:
    every = timedelta(seconds=settings.meter_every_seconds)
    action = ScheduleActionStartWorkflow(
        MeteringWorkflow.run,
        MeteringInput(),
        id=metering_schedule_id(settings),
        task_queue=settings.task_queue,
    )
    return Schedule(
        action=action,
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=every)]),
        # A run still busy (Stripe down, a big backlog) is not joined by another.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
    )


async def ensure_metering_schedule(client: Client, settings: Settings) -> None:
    """Create the metering schedule, or bring an existing one to the settings' interval and
    task queue; every worker calls this at start, so it is idempotent."""
    desired = metering_schedule(settings)
    try:
        await client.create_schedule(metering_schedule_id(settings), desired)
        return
    except ScheduleAlreadyRunningError:
        pass

    def update(current: ScheduleUpdateInput) -> ScheduleUpdate | None:
        schedule = current.description.schedule
        if schedule.spec.intervals == desired.spec.intervals and _same_action(schedule, desired):
            return None  # as wanted; a paused schedule stays paused
        schedule.action, schedule.spec, schedule.policy = (
            desired.action,
            desired.spec,
            desired.policy,
        )
        return ScheduleUpdate(schedule=schedule)

    await client.get_schedule_handle(metering_schedule_id(settings)).update(update)


def _same_action(current: Schedule, desired: Schedule) -> bool:
    have, want = current.action, desired.action
    return (
        isinstance(have, ScheduleActionStartWorkflow)
        and isinstance(want, ScheduleActionStartWorkflow)
        and (have.workflow, have.task_queue) == (want.workflow, want.task_queue)
        and current.policy.overlap == desired.policy.overlap
    )
