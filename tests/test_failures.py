"""The words a failed build's `error` is made of, for each way a step can fail."""

from __future__ import annotations

import pytest
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    RetryState,
    TimeoutError,
    TimeoutType,
)

from workflows.build import BuildFailed
from workflows.failures import reason


def failed(activity: str, cause: BaseException, state: RetryState) -> ActivityError:
    err = ActivityError(
        "activity error",
        scheduled_event_id=5,
        started_event_id=6,
        identity="worker",
        activity_type=activity,
        activity_id="1",
        retry_state=state,
    )
    err.__cause__ = cause
    return err


def timeout(kind: TimeoutType, cause: BaseException | None = None) -> TimeoutError:
    err = TimeoutError("activity timeout", type=kind, last_heartbeat_details=[])
    err.__cause__ = cause
    return err


@pytest.mark.parametrize(
    ("err", "words"),
    [
        (
            failed(
                "write_code",
                ApplicationError("the model API rejected the API key (401)", type="NotAuthorized"),
                RetryState.NON_RETRYABLE_FAILURE,
            ),
            "the model API rejected the API key (401)",
        ),
        (
            failed(
                "publish",
                timeout(TimeoutType.SCHEDULE_TO_CLOSE, timeout(TimeoutType.HEARTBEAT)),
                RetryState.TIMEOUT,
            ),
            "publishing did not succeed before its deadline; last error: "
            "its worker stopped answering (no heartbeat)",
        ),
        (
            failed("run_tests", timeout(TimeoutType.START_TO_CLOSE), RetryState.TIMEOUT),
            "the test run did not succeed before its deadline; last error: each attempt timed out",
        ),
        (
            failed(
                "plan",
                ApplicationError("", type="AttributeError"),
                RetryState.NON_RETRYABLE_FAILURE,
            ),
            "planning failed (AttributeError)",
        ),
        (
            BuildFailed("tests still failing after 3 attempts"),
            "tests still failing after 3 attempts",
        ),
    ],
)
def test_reason_words(err: BaseException, words: str) -> None:
    assert reason(err) == words
