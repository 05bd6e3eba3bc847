"""Usage to Stripe: a Schedule starts this workflow every COFOUNDER_METER_EVERY_SECONDS, and it
sends due ledger rows as billing meter events in batches until none is due.

Deterministic: only `workflow` calls and payload models.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    # The activity class (with the Stripe SDK and SQLAlchemy behind it) and pydantic payloads:
    # not re-imported inside the sandbox, only their names and types are used here.
    from activities.billing.metering import MeterActivities
    from cofounder.payloads.billing import MeterBatch, MeteringInput, MeteringResult

# Stripe being down must not lose usage: a batch is retried until it goes through, backing
# off to a few minutes between attempts. The Schedule skips its runs meanwhile (overlap SKIP).
# A refused row does not fail the batch; Stripe refusing our key does (non-retryable).
METER_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=3),
    maximum_attempts=0,
)
# One batch is at most METER_BATCH_ROWS requests of seconds each.
METER_ATTEMPT = timedelta(minutes=10)
# The worker heartbeats every activity each second, so a dead worker's batch moves on quickly.
METER_HEARTBEAT = timedelta(seconds=5)
# Batches per run: a backlog larger than this is left to the next run.
MAX_BATCHES = 50


@workflow.defn
class MeteringWorkflow:
    """One round of sending usage to Stripe."""

    @workflow.run
    async def run(self, request: MeteringInput) -> MeteringResult:
        result = MeteringResult()
        for number in range(MAX_BATCHES):
            # Rows refused before are sent again in the first batch only: a refusal that
            # lasts is tried once a run, and never keeps a run going.
            batch = MeterBatch(limit=request.batch_rows, retry_refused=number == 0)
            report = await workflow.execute_activity_method(
                MeterActivities.send_meter_events,
                batch,
                start_to_close_timeout=METER_ATTEMPT,
                heartbeat_timeout=METER_HEARTBEAT,
                retry_policy=METER_RETRY,
                summary=f"send usage to Stripe (batch {number + 1})",
            )
            result = result.add(report)
            if report.remaining == 0 or report.sent + report.refused == 0:
                break
        if result.refused:
            workflow.logger.warning("Stripe refused %d meter events", result.refused)
        return result
