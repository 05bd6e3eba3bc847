"""The artifact store on both backends: a local folder, and S3 through boto3 against moto's
server (S3's HTTP API, locally). A demo build runs with its artifacts in S3 only."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.llm import LlmActivities, make_anthropic_client
from cofounder.artifacts import ArtifactNotFound, ArtifactStore, BadReference, open_store
from cofounder.payloads import BuildStatus, PlanRequest
from cofounder.settings import Settings
from tests.helpers import env_for, insert_build, model_stats, side_effects, start_build
from worker import running_worker

TREE = {"pkg/__init__.py": b"", "pkg/core.py": b"VALUE = 1\n", "README.md": b"# hi\n"}


def keys(endpoint: str, bucket: str) -> list[str]:
    listing = boto3.client("s3", endpoint_url=endpoint).list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest_asyncio.fixture(params=["folder", "s3"])
async def any_store(
    request: pytest.FixtureRequest, settings: Settings, s3_endpoint: str
) -> AsyncIterator[ArtifactStore]:
    if request.param == "folder":
        yield open_store(settings)
        return
    name = request.getfixturevalue("bucket")
    yield open_store(
        settings.model_copy(
            update={"artifacts": f"s3://{name}/builds", "artifacts_endpoint_url": s3_endpoint}
        )
    )


async def test_round_trips_and_refusals(any_store: ArtifactStore) -> None:
    ref = await any_store.put_bytes(b"log line\n")
    assert await any_store.get_bytes(ref) == b"log line\n"
    assert await any_store.put_bytes(b"log line\n") == ref  # content-addressed
    assert await any_store.get_json(await any_store.put_json({"b": 1, "a": [2]})) == {
        "a": [2],
        "b": 1,
    }
    assert await any_store.get_tree(await any_store.put_tree(TREE)) == TREE
    with pytest.raises(ArtifactNotFound):
        await any_store.get_bytes("sha256:" + "0" * 64)
    with pytest.raises(BadReference):
        await any_store.get_bytes("sha256:../../etc/passwd")


async def test_s3_keeps_one_object_per_content_under_the_prefix(
    settings: Settings, s3_endpoint: str, bucket: str
) -> None:
    store = open_store(
        settings.model_copy(
            update={"artifacts": f"s3://{bucket}/team/a", "artifacts_endpoint_url": s3_endpoint}
        )
    )
    await asyncio.gather(*(store.put_tree(TREE) for _ in range(3)))
    stored = keys(s3_endpoint, bucket)
    assert len(stored) == len(TREE) + 1  # three blobs and one manifest, whatever the repeats
    assert all(key.startswith("team/a/") for key in stored)


async def test_an_owner_reads_only_its_own_artifacts(any_store: ArtifactStore) -> None:
    alice, bob = any_store.for_owner("user_alice"), any_store.for_owner("user_bob")
    ref = await alice.put_bytes(b"alice's plan")
    assert await alice.get_bytes(ref) == b"alice's plan"
    with pytest.raises(ArtifactNotFound):
        await bob.get_bytes(ref)  # the reference alone opens nothing
    with pytest.raises(ArtifactNotFound):
        await any_store.for_owner("local").get_bytes(ref)
    # The local owner still reads what the store held before artifacts were kept per owner.
    legacy = await any_store.put_bytes(b"from an older version")
    assert await any_store.for_owner("local").get_bytes(legacy) == b"from an older version"
    with pytest.raises(ArtifactNotFound):
        await alice.get_bytes(legacy)
    with pytest.raises(BadReference):
        any_store.for_owner("../bob")


def test_only_an_s3_url_names_another_store() -> None:
    with pytest.raises(ValueError, match="s3://bucket"):
        Settings(artifacts="/srv/artifacts", _env_file=None)  # type: ignore[call-arg]


@pytest.mark.slow
async def test_a_demo_build_keeps_its_artifacts_in_s3_only(
    env: WorkflowEnvironment, settings: Settings, sessions: Any, s3_endpoint: str, bucket: str
) -> None:
    on_s3 = settings.model_copy(
        update={"artifacts": f"s3://{bucket}/a", "artifacts_endpoint_url": s3_endpoint}
    )
    async with running_worker(env.client, on_s3):
        handle = await start_build(env.client, on_s3, sessions)
        view = await handle.result()
    assert view.status == BuildStatus.SUCCEEDED
    assert len(keys(s3_endpoint, bucket)) > 10  # plans, workspaces, logs, transcripts
    assert not settings.artifacts_dir.exists()  # nothing landed on this worker's disk


async def test_a_retry_on_another_machine_reuses_the_answer_from_the_shared_store(
    settings: Settings, sessions: Any, s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    shared = {"artifacts": f"s3://{bucket}/a", "artifacts_endpoint_url": s3_endpoint}
    machines = [
        settings.model_copy(update={**shared, "data_dir": tmp_path / name}) for name in "ab"
    ]
    build_id = await insert_build(sessions)
    request = PlanRequest(build_id=build_id, project="demo", goal="slugs")
    first, second = (
        LlmActivities(make_anthropic_client(m), m, open_store(m), sessions) for m in machines
    )
    planned = await env_for(build_id, "plan").run(first.plan, request)
    retried = await env_for(build_id, "plan").run(second.plan, request)  # same activity, retried

    assert retried == planned
    stats = model_stats(str(settings.model_base_url))
    assert (stats["requests"], (await side_effects(sessions, build_id))["ledger_rows"]) == (1, 1)
