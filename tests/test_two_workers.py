"""Workers are interchangeable: two workers on separate data dirs, sharing only the database,
Temporal and an S3 store, carry a build between them when the one running it is killed."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import boto3
import pytest

from cofounder.payloads import BuildStatus
from cofounder.settings import Settings
from cofounder.temporal import connect
from tests.helpers import inject_faults, model_stats, sandboxes_of, side_effects, start_build
from tests.processes import BUILD_DEADLINE, Processes


@pytest.mark.slow
async def test_a_build_moves_to_the_other_machine_when_its_worker_dies(
    crash_settings: Settings,
    processes: Processes,
    sessions,
    offline_model: str,
    s3_endpoint: str,
    bucket: str,
    tmp_path: Path,
) -> None:
    shared = {
        "DATABASE_URL": crash_settings.resolved_database_url,
        "COFOUNDER_ARTIFACTS": f"s3://{bucket}/shared",
        "COFOUNDER_ARTIFACTS_ENDPOINT_URL": s3_endpoint,
    }
    machines = {name: tmp_path / name for name in ("machine-a", "machine-b")}
    inject_faults(offline_model, {"slow_tests": 2, "role": "coder"})  # a test run to die in
    processes.temporal()
    workers = {
        name: processes.worker(name, {**shared, "COFOUNDER_DATA_DIR": str(data_dir)})
        for name, data_dir in machines.items()
    }
    client = await connect(crash_settings)
    handle = await start_build(client, crash_settings, sessions)

    holder = None
    for _ in range(600):  # whichever worker took the test run dies in the middle of it
        holder = next((n for n, w in workers.items() if sandboxes_of(w.pid)), None)
        if holder:
            break
        await asyncio.sleep(0.05)
    assert holder is not None, "no worker ever ran the tests"
    os.killpg(workers[holder].pid, signal.SIGKILL)
    workers[holder].wait()

    view = await asyncio.wait_for(handle.result(), BUILD_DEADLINE)
    assert view.status == BuildStatus.SUCCEEDED
    effects = await side_effects(sessions, view.build_id)
    assert effects == {"pull_requests": 1, "ledger_rows": model_stats(offline_model)["served"]}
    # Everything the build needed came from the shared store, nothing from either machine's disk.
    for data_dir in machines.values():
        assert not (data_dir / "artifacts").exists()
    listing = boto3.client("s3", endpoint_url=s3_endpoint).list_objects_v2(Bucket=bucket)
    stored = [item["Key"] for item in listing.get("Contents", [])]
    assert any(key.startswith("shared/owners/local/calls/") for key in stored)  # the journal too
    survivor = next(path for name, path in machines.items() if name != holder)
    assert (survivor / "git" / "local" / "demo.git").exists()  # it published
