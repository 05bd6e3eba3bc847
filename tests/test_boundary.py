"""Every activity crosses into Temporal through one boundary that classifies its errors alike."""

from __future__ import annotations

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.errors import activity_boundary
from activities.publish import PublishActivities
from activities.sandbox.activities import SandboxActivities
from activities.sandbox.local import LocalRuntime
from cofounder.artifacts import ArtifactStore
from cofounder.payloads import PublishRequest, TestRequest, Usage
from cofounder.settings import Settings
from tests.helpers import insert_build
from worker import build_activities

MISSING = "sha256:" + "0" * 64


def test_every_registered_activity_is_behind_the_boundary(settings: Settings, sessions) -> None:
    bounded = activity_boundary(lambda: None).__code__  # type: ignore[arg-type, return-value]
    activities = build_activities(settings, sessions)
    assert len(activities) == 16
    for method in activities:
        assert method.__func__.__code__ is bounded, method.__name__  # type: ignore[attr-defined]


async def test_a_missing_artifact_is_non_retryable_in_every_activity(
    settings: Settings, store: ArtifactStore, sessions
) -> None:
    sandbox = SandboxActivities(settings, store, LocalRuntime(settings))
    publish = PublishActivities(settings, store, sessions)
    request = PublishRequest(
        build_id=await insert_build(sessions),  # a real build: only its artifacts are missing
        project="demo",
        goal="g",
        title="t",
        plan_ref=MISSING,
        workspace_ref=MISSING,
        review_ref=MISSING,
        test_summary="",
        attempts=1,
        cost=Usage(),
    )
    calls = [
        (sandbox.run_tests, TestRequest(build_id="b1", workspace_ref=MISSING)),
        (sandbox.run_tests, TestRequest(build_id="b1", workspace_ref="not-a-ref")),
        (publish.publish, request),
    ]
    for method, argument in calls:
        with pytest.raises(ApplicationError) as raised:
            await ActivityEnvironment().run(method, argument)
        assert (raised.value.type, raised.value.non_retryable) == ("MissingArtifact", True)


async def test_an_unexpected_error_is_left_for_temporal_to_retry() -> None:
    @activity_boundary
    async def buggy() -> None:
        raise AttributeError("'str' object has no attribute 'model_dump'")

    with pytest.raises(AttributeError):
        await buggy()
