"""`cofounder worker` as a process: its metrics port, and its puts to CloudWatch (moto)."""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from typing import Any

import boto3
import httpx

from tests.conftest import free_port
from tests.processes import Processes
from tests.test_cloudwatch import listed


async def test_a_worker_process_serves_and_puts_temporals_metrics(
    processes: Processes, s3_endpoint: str, aws: None
) -> None:
    port = free_port()
    namespace = f"cofounder-worker-{uuid.uuid4().hex[:8]}"
    processes.temporal()
    worker = processes.worker(
        env={
            "COFOUNDER_WORKER_METRICS_PORT": str(port),
            "COFOUNDER_CLOUDWATCH_NAMESPACE": namespace,
            "COFOUNDER_CLOUDWATCH_ENDPOINT_URL": s3_endpoint,
            "COFOUNDER_CLOUDWATCH_EVERY_SECONDS": "0.5",
        }
    )
    cloudwatch = boto3.client("cloudwatch", endpoint_url=s3_endpoint)

    # A polling worker's runtime reports its pollers and its requests to the server.
    text = await _eventually(lambda: _scrape(port), "temporal_num_pollers", processes)
    assert "temporal_request_total" in text and "# TYPE cofounder_model_calls_total" in text
    put = await _eventually(
        lambda: str(listed(cloudwatch, namespace)), "temporal_request_total", processes
    )
    assert "('service_name', 'temporal-core-sdk')" in put

    # Stopping puts once more and closes the port, without holding the worker up.
    worker.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(worker.wait, 15) == 0, processes.log_tail("worker")
    assert _scrape(port) == ""


def _scrape(port: int) -> str:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
    except httpx.HTTPError:
        return ""  # not serving yet


async def _eventually(read: Any, needle: str, processes: Processes, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while needle not in (text := await asyncio.to_thread(read)):
        assert time.monotonic() < deadline, f"no {needle}:\n{processes.log_tail('worker')}"
        await asyncio.sleep(0.2)
    return str(text)
