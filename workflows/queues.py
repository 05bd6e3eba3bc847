"""Which task queue each kind of work goes to.

A build's workflow tasks and its bookkeeping run on the base queue (`COFOUNDER_TASK_QUEUE`);
its model calls and its sandbox work each have their own, so a fleet can rate-limit model calls
as a whole (the provider's limits are the fleet's, not a worker's) and bound sandbox work per
worker, and a worker process can serve any subset of the three.
"""

from __future__ import annotations

from typing import Literal

QueueKind = Literal["workflows", "models", "sandbox"]
KINDS: tuple[QueueKind, ...] = ("workflows", "models", "sandbox")

# Activity names (a method's name is its activity's name) by the queue they run on; every
# other activity is bookkeeping and stays beside the workflows.
MODEL_ACTIVITIES = frozenset({"plan", "write_code", "debug", "review", "model_turn"})
SANDBOX_ACTIVITIES = frozenset({"open_sandbox", "run_tests", "close_sandbox", "run_tools"})


def kind_of(activity_name: str) -> QueueKind:
    """The queue kind an activity runs on."""
    if activity_name in MODEL_ACTIVITIES:
        return "models"
    if activity_name in SANDBOX_ACTIVITIES:
        return "sandbox"
    return "workflows"


def queue_name(base: str, kind: QueueKind) -> str:
    """The task queue of `kind` beside the base queue `base`."""
    return base if kind == "workflows" else f"{base}-{kind}"
