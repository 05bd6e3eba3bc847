"""envd's process service for the E2B double: commands run as real subprocesses in the root.

Each process has its own session (so SIGKILL reaches the whole group) and reader tasks that fan
its output out to every stream following it: the `Start` that launched it and any `Connect`.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from e2b.envd.process import process_connect, process_pb
from protobuf import Oneof

if TYPE_CHECKING:
    from connectrpc.request import RequestContext

    from tests.doubles.e2b_state import Registry, Sandbox

Event = process_pb.ProcessEvent
CHUNK = 32 * 1024


class RunningProcess:
    """A subprocess of one sandbox and the queues of the streams that follow its events."""

    def __init__(self, proc: asyncio.subprocess.Process, config: process_pb.ProcessConfig) -> None:
        self.proc = proc
        self.pid = proc.pid
        self.config = config
        self.tag: str | None = None
        self._followers: list[asyncio.Queue[Event | None]] = []

    def follow(self) -> asyncio.Queue[Event | None]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._followers.append(queue)
        return queue

    def unfollow(self, queue: asyncio.Queue[Event | None]) -> None:
        if queue in self._followers:
            self._followers.remove(queue)

    def publish(self, event: Event | None) -> None:
        for queue in self._followers:
            queue.put_nowait(event)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass

    async def pump(self, sandbox: Sandbox) -> None:
        """Publish output as it comes, then the end event; then forget the process."""
        assert self.proc.stdout is not None and self.proc.stderr is not None
        await asyncio.gather(
            self._pump_stream(self.proc.stdout, "stdout"),
            self._pump_stream(self.proc.stderr, "stderr"),
        )
        code = await self.proc.wait()
        sandbox.processes.pop(self.pid, None)
        self.publish(_event("end", end_event(code)))
        self.publish(None)

    async def _pump_stream(self, stream: asyncio.StreamReader, name: str) -> None:
        while chunk := await stream.read(CHUNK):
            data = Event.DataEvent(output=Oneof(name, chunk))  # type: ignore[arg-type]
            self.publish(_event("data", data))


def _event(field: str, payload: object) -> Event:
    # The stubs type each oneof field with its own literal; one untyped constructor serves all.
    return Event(event=Oneof(field, payload))  # type: ignore[arg-type]


def end_event(code: int) -> Event.EndEvent:
    """envd reports a signal death as exit code -1 with Go's "signal: killed" status."""
    if code < 0:
        status = f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
        return Event.EndEvent(exit_code=-1, exited=False, status=status, error=status)
    status = f"exit status {code}"
    return Event.EndEvent(
        exit_code=code, exited=True, status=status, error=status if code else None
    )


def command_env(sandbox: Sandbox, config: process_pb.ProcessConfig) -> dict[str, str]:
    home = str(sandbox.host_path("/home/user"))
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home,
        "USER": "user",
        **sandbox.envs,
        **dict(config.envs),
    }


def command_args(config: process_pb.ProcessConfig) -> list[str]:
    args = list(config.args)
    # The SDK runs `/bin/bash -l -c CMD`; a login shell would read the host's profile files.
    if args[:1] == ["-l"]:
        args = args[1:]
    return [config.cmd, *args]


async def spawn(sandbox: Sandbox, request: process_pb.StartRequest) -> RunningProcess:
    config = request.process or process_pb.ProcessConfig()
    cwd = sandbox.host_path(config.cwd if config.has_field("cwd") else "/home/user")
    if not cwd.is_dir():
        raise ConnectError(Code.INVALID_ARGUMENT, f"cwd '{config.cwd}' does not exist")
    proc = await asyncio.create_subprocess_exec(
        *command_args(config),
        cwd=cwd,
        env=command_env(sandbox, config),
        stdin=asyncio.subprocess.PIPE if request.stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    process = RunningProcess(proc, config)
    process.tag = request.tag if request.has_field("tag") else None
    sandbox.processes[process.pid] = process
    return process


class ProcessService(process_connect.Process):
    """`process.Process` over the registry; the sandbox comes from the `E2b-Sandbox-Id` header."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        # The loop keeps only weak references to tasks; these must outlive the Start stream.
        self._pumps: set[asyncio.Task[None]] = set()

    def _sandbox(self, ctx: RequestContext) -> Sandbox:
        sandbox = self.registry.live(ctx.request_headers.get("e2b-sandbox-id", ""))
        if sandbox is None or sandbox.state != "running":
            raise ConnectError(Code.UNAVAILABLE, "The sandbox was not found")
        return sandbox

    def _process(
        self, ctx: RequestContext, selector: process_pb.ProcessSelector | None
    ) -> RunningProcess:
        chosen = selector.selector if selector is not None else None
        for process in self._sandbox(ctx).processes.values():
            if chosen in (Oneof("pid", process.pid), Oneof("tag", process.tag)):
                return process
        raise ConnectError(Code.NOT_FOUND, f"process {chosen} not found")

    async def start(
        self, request: process_pb.StartRequest, ctx: RequestContext
    ) -> AsyncIterator[process_pb.StartResponse]:
        sandbox = self._sandbox(ctx)
        process = await spawn(sandbox, request)
        # Follow before the pump runs, so no output is published before this stream listens.
        queue = process.follow()
        task = asyncio.create_task(process.pump(sandbox))
        self._pumps.add(task)
        task.add_done_callback(self._pumps.discard)
        async for event in _events(process, queue):
            yield process_pb.StartResponse(event=event)

    async def connect(
        self, request: process_pb.ConnectRequest, ctx: RequestContext
    ) -> AsyncIterator[process_pb.ConnectResponse]:
        process = self._process(ctx, request.process)
        async for event in _events(process, process.follow()):
            yield process_pb.ConnectResponse(event=event)

    async def list(
        self, request: process_pb.ListRequest, ctx: RequestContext
    ) -> process_pb.ListResponse:
        processes = self._sandbox(ctx).processes.values()
        return process_pb.ListResponse(
            processes=[
                process_pb.ProcessInfo(config=p.config, pid=p.pid, tag=p.tag) for p in processes
            ]
        )

    async def send_signal(
        self, request: process_pb.SendSignalRequest, ctx: RequestContext
    ) -> process_pb.SendSignalResponse:
        process = self._process(ctx, request.process)
        sig = signal.SIGKILL if request.signal == process_pb.Signal.SIGKILL else signal.SIGTERM
        process.kill(sig)
        return process_pb.SendSignalResponse()

    async def send_input(
        self, request: process_pb.SendInputRequest, ctx: RequestContext
    ) -> process_pb.SendInputResponse:
        stdin = self._stdin(ctx, request.process)
        match request.input.input if request.input is not None else None:
            case Oneof(field="stdin", value=data) | Oneof(field="pty", value=data):
                stdin.write(data)
                await stdin.drain()
        return process_pb.SendInputResponse()

    async def close_stdin(
        self, request: process_pb.CloseStdinRequest, ctx: RequestContext
    ) -> process_pb.CloseStdinResponse:
        self._stdin(ctx, request.process).close()
        return process_pb.CloseStdinResponse()

    def _stdin(
        self, ctx: RequestContext, selector: process_pb.ProcessSelector | None
    ) -> asyncio.StreamWriter:
        stdin = self._process(ctx, selector).proc.stdin
        if stdin is None:
            raise ConnectError(Code.FAILED_PRECONDITION, "the process was started without stdin")
        return stdin


async def _events(
    process: RunningProcess, queue: asyncio.Queue[Event | None]
) -> AsyncIterator[Event]:
    try:
        yield _event("start", Event.StartEvent(pid=process.pid))
        while (event := await queue.get()) is not None:
            yield event
    finally:
        process.unfollow(queue)
