"""What only the E2B runtime does: one sandbox per build however often it is opened, metadata
and templates, pause between phases, no secret inside, and E2B's errors in our words.
(The behaviour both runtimes share is in test_sandbox_sessions.py.)"""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import SecretStr
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.errors import NotAuthorized
from activities.sandbox import SessionSpec
from activities.sandbox.activities import SandboxActivities
from activities.sandbox.e2b import E2BRuntime
from cofounder import payloads
from cofounder.artifacts import ArtifactStore
from cofounder.settings import Settings
from tests.conftest import e2b_settings
from tests.doubles.e2b import E2BDouble

SPEC = SessionSpec(build_id="b-e2b", owner="alice", project="shop", language="node")


async def test_concurrent_opens_make_one_sandbox(settings: Settings, e2b_double: E2BDouble) -> None:
    runtime = E2BRuntime(e2b_settings(settings, e2b_double))
    sessions = await asyncio.gather(*(runtime.open(SPEC) for _ in range(3)))
    assert len({session.session_id for session in sessions}) == 1
    assert e2b_double.counts.creates == 1
    again = await runtime.open(SPEC)  # later: found by its metadata, not created
    assert again.session_id == sessions[0].session_id and e2b_double.counts.creates == 1

    sandbox = e2b_double.sandboxes[again.session_id]
    assert sandbox.template_id == settings.e2b_template_node
    assert sandbox.metadata == SPEC.metadata
    assert sandbox.envs == {}  # nothing of the worker's environment, no secret, goes in


async def test_a_build_pauses_its_sandbox_between_phases(
    settings: Settings, store: ArtifactStore, e2b_double: E2BDouble
) -> None:
    activities = SandboxActivities(settings, store, E2BRuntime(e2b_settings(settings, e2b_double)))
    env = ActivityEnvironment()
    tree = {"test_ok.py": b"def test_ok():\n    assert True\n"}
    ref = await store.for_owner("alice").put_tree(tree)
    opened = await env.run(
        activities.open_sandbox,
        payloads.SandboxRequest(build_id="b-p", owner="alice", project="shop", workspace_ref=ref),
    )
    request = payloads.TestRequest(
        build_id="b-p", owner="alice", project="shop", workspace_ref=ref, sandbox=opened
    )
    for _ in range(2):
        report = await env.run(activities.run_tests, request)
        assert report.passed, report.summary
        assert e2b_double.sandboxes[opened.session_id].state == "paused"
    assert (e2b_double.counts.pauses, e2b_double.counts.resumes) == (2, 1)
    assert await env.run(activities.close_sandbox, opened) is True
    assert e2b_double.sandboxes[opened.session_id].state == "killed"
    assert e2b_double.counts.creates == 1 and e2b_double.counts.kills == 1


async def test_a_wrong_api_key_is_a_permanent_error_that_names_no_key(
    settings: Settings, store: ArtifactStore, e2b_double: E2BDouble
) -> None:
    wrong = "e2b_" + "0" * 40
    bad = e2b_settings(settings, e2b_double).model_copy(update={"e2b_api_key": SecretStr(wrong)})
    with pytest.raises(NotAuthorized):
        await E2BRuntime(bad).open(SPEC)

    activities = SandboxActivities(bad, store, E2BRuntime(bad))
    request = payloads.SandboxRequest(build_id="b-k", owner="alice", project="shop")
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(activities.open_sandbox, request)
    assert refused.value.non_retryable and refused.value.type == "AuthenticationException"
    assert wrong not in str(refused.value) and e2b_double.api_key not in str(refused.value)
    assert e2b_double.counts.creates == 0


async def test_a_node_project_gets_the_node_template(
    settings: Settings, store: ArtifactStore, e2b_double: E2BDouble
) -> None:
    activities = SandboxActivities(settings, store, E2BRuntime(e2b_settings(settings, e2b_double)))
    ref = await store.for_owner("alice").put_tree({"package.json": json.dumps({}).encode()})
    request = payloads.SandboxRequest(
        build_id="b-n", owner="alice", project="shop", workspace_ref=ref
    )
    opened = await ActivityEnvironment().run(activities.open_sandbox, request)
    assert opened.language == "node" and opened.runtime == "e2b"
    assert e2b_double.sandboxes[opened.session_id].template_id == settings.e2b_template_node
