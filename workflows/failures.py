"""Why a build failed, in words a founder or operator can act on (never a stack trace).

Deterministic helpers for the workflow: they only read the failure Temporal hands back.
"""

from __future__ import annotations

from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    FailureError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

# The step in words, for a build that fails at its deadline.
STEP_NAMES = {
    "plan": "planning",
    "write_code": "coding",
    "debug": "debugging",
    "review": "reviewing",
    "run_tests": "the test run",
    "publish": "publishing",
    "record_status": "recording progress",
    "record_cost": "settling the bill",
}


def reason(err: BaseException) -> str:
    """Why the build failed, in words a founder or operator can act on."""
    step = "a step"
    while isinstance(err, ActivityError) and err.cause is not None:
        step = STEP_NAMES.get(err.activity_type, err.activity_type)
        if err.retry_state == RetryState.TIMEOUT:
            return f"{step} did not succeed before its deadline; last error: {_last(err.cause)}"
        err = err.cause
    return _message(err) or f"{step} failed ({_kind(err)})"


def _last(err: BaseException) -> str:
    """The last attempt's failure, under any timeouts wrapped around it."""
    while isinstance(err, TimeoutError) and err.cause is not None:
        err = err.cause
    if isinstance(err, TimeoutError):
        if err.type == TimeoutType.HEARTBEAT:
            return "its worker stopped answering (no heartbeat)"
        return "each attempt timed out"
    return _message(err) or _kind(err)


def _message(err: BaseException) -> str:
    # A failure's own message; str() of one that crossed from an activity adds its type name.
    return err.message if isinstance(err, FailureError) else str(err)


def _kind(err: BaseException) -> str:
    # An activity's exception crosses as an ApplicationError carrying its original type name.
    return (err.type if isinstance(err, ApplicationError) else None) or type(err).__name__
