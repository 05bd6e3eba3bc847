"""What a build's history says about a drained worker: did it finish the activities it was
running, and did it take any task after it was told to stop."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory

SCHEDULED = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
STARTED = EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
COMPLETED = EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
WORKFLOW_TASK_STARTED = EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED


@dataclass(frozen=True)
class InFlight:
    """An activity attempt a worker was running: the build's workflow, the activity, the try."""

    workflow_id: str
    activity_id: str
    attempt: int
    activity_type: str


def _seconds(event: HistoryEvent) -> float:
    return event.event_time.ToNanoseconds() / 1e9


def _outcome(history: WorkflowHistory, activity_id: str) -> dict[EventType.ValueType, HistoryEvent]:
    """The activity's scheduled, started and completed events, by event type (an activity id
    names one activity of a run; the builds here never continue as new)."""
    found: dict[EventType.ValueType, HistoryEvent] = {}
    for event in history.events:
        if event.event_type == SCHEDULED:
            if event.activity_task_scheduled_event_attributes.activity_id == activity_id:
                found[SCHEDULED] = event
        elif event.event_type in (STARTED, COMPLETED) and SCHEDULED in found:
            attrs = (
                event.activity_task_started_event_attributes
                if event.event_type == STARTED
                else event.activity_task_completed_event_attributes
            )
            if attrs.scheduled_event_id == found[SCHEDULED].event_id:
                found[event.event_type] = event
    return found


def drain_problems(
    histories: dict[str, WorkflowHistory], in_flight: list[InFlight], worker: str, after: float
) -> list[str]:
    """Why the attempts `worker` was running were not all finished by it, on that attempt; and
    whether none of them was still running at `after` (the signal), which proves nothing."""
    problems = []
    finished_late = False
    for item in in_flight:
        events = _outcome(histories[item.workflow_id], item.activity_id)
        started, completed = events.get(STARTED), events.get(COMPLETED)
        if started is None or completed is None:
            problems.append(f"{item}: did not complete")
            continue
        attrs = started.activity_task_started_event_attributes
        if attrs.attempt != item.attempt or attrs.identity != worker:
            problems.append(f"{item}: completed on attempt {attrs.attempt} by {attrs.identity}")
        closer = completed.activity_task_completed_event_attributes.identity
        if closer != worker:
            problems.append(f"{item}: completed by {closer}")
        finished_late = finished_late or _seconds(completed) > after
    if in_flight and not problems and not finished_late:
        problems.append("every attempt in flight finished before the signal: nothing drained")
    return problems


def started_after(histories: dict[str, WorkflowHistory], worker: str, at: float) -> list[str]:
    """The workflow tasks and activities (by type) `worker` started after `at`."""
    late = []
    for workflow_id, history in histories.items():
        names = {
            e.event_id: e.activity_task_scheduled_event_attributes.activity_type.name
            for e in history.events
            if e.event_type == SCHEDULED
        }
        for event in history.events:
            if event.event_type == STARTED:
                attrs = event.activity_task_started_event_attributes
                who, what = attrs.identity, names[attrs.scheduled_event_id]
            elif event.event_type == WORKFLOW_TASK_STARTED:
                who, what = event.workflow_task_started_event_attributes.identity, "workflow task"
            else:
                continue
            if who == worker and _seconds(event) > at:
                late.append(f"{workflow_id}: {what} {_seconds(event) - at:+.1f}s")
    return late
