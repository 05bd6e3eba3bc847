"""Running one sandboxed process: output capped and streamed, killed on timeout or cancel."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Sequence

from activities.sandbox import CommandResult, OnOutput

TAIL_BYTES = 16_384
# Past this multiple of the output cap a run is flooding, not testing: it is stopped.
FLOOD_FACTOR = 4


class Output:
    """The first `limit` bytes and a short tail of a stream; notices a flood."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.head = bytearray()
        self.tail = b""
        self.total = 0

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    @property
    def flooding(self) -> bool:
        return self.total > self.limit * FLOOD_FACTOR

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
        self.tail = (self.tail + chunk)[-TAIL_BYTES:]

    def log(self) -> bytes:
        if not self.truncated:
            return bytes(self.head)
        marker = f"\n[... output truncated: {self.total} bytes, kept the first {self.limit}"
        marker += " and the last lines ...]\n"
        return bytes(self.head) + marker.encode() + self.tail

    def result(self, exit_code: int, timed_out: bool) -> CommandResult:
        return CommandResult(
            exit_code=exit_code,
            log=self.log(),
            tail=self.tail,
            timed_out=timed_out,
            truncated=self.truncated,
        )


async def run_limited(
    argv: Sequence[str],
    *,
    timeout: float,
    output_limit: int,
    on_output: OnOutput | None = None,
) -> CommandResult:
    """Run `argv` in its own process group; on timeout, flood or cancellation the whole group
    is killed (bwrap's pid namespace then takes everything inside with it)."""
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
        start_new_session=True,
    )
    output = Output(output_limit)
    timed_out = False
    try:
        await asyncio.wait_for(_collect(proc, output, on_output), timeout)
    except TimeoutError:
        timed_out = True
    finally:
        if proc.returncode is None:
            kill_group(proc.pid)
        await proc.wait()
    exit_code = proc.returncode if proc.returncode is not None else -signal.SIGKILL
    return output.result(exit_code, timed_out)


async def _collect(
    proc: asyncio.subprocess.Process, output: Output, on_output: OnOutput | None
) -> None:
    assert proc.stdout is not None
    killed = False
    while chunk := await proc.stdout.read(65536):
        output.add(chunk)
        if on_output is not None and len(output.head) < output.limit:
            await on_output(chunk)
        if output.flooding and not killed:
            killed = True
            kill_group(proc.pid)
    await proc.wait()


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass
