"""One E2B sandbox as a session: its files, its commands, its snapshots."""

from __future__ import annotations

import asyncio
import io
import shlex
import tarfile
from collections.abc import Sequence
from typing import Any

from e2b import AsyncSandbox, CommandExitException, FileNotFoundException, SandboxException

from activities.errors import Unavailable
from activities.sandbox import NOT_SNAPSHOTTED, Command, CommandResult, OnOutput, snapshotted
from activities.sandbox.e2b_errors import vendor_errors
from activities.sandbox.process import Output
from activities.sandbox.workspace import parts_of
from cofounder.metrics import timed_sandbox_run

WORKSPACE = "/home/user/workspace"
# Beside the workspace, not in it (tar would archive itself), named by absolute path for the
# file API and relative to the workspace for commands.
ARCHIVE = "/home/user/.cofounder-snapshot.tar.gz"
ARCHIVE_FROM_WORKSPACE = "../.cofounder-snapshot.tar.gz"
# How long one control or file request may take (commands have their own timeouts).
REQUEST_TIMEOUT = 60.0


class E2BSession:
    def __init__(self, sandbox: AsyncSandbox) -> None:
        self.sandbox = sandbox
        self.session_id: str = sandbox.sandbox_id

    async def write_files(self, files: dict[str, bytes]) -> None:
        entries = [{"path": _path(name), "data": data} for name, data in sorted(files.items())]
        async with vendor_errors():
            await self.sandbox.files.write_files(entries)  # type: ignore[arg-type]

    async def read_file(self, path: str) -> bytes:
        async with vendor_errors():
            try:
                return bytes(await self.sandbox.files.read(_path(path), format="bytes"))
            except FileNotFoundException as err:
                raise FileNotFoundError(f"no such file in the workspace: {path!r}") from err

    async def list_files(self) -> dict[str, int]:
        pruned = " -o ".join(f"-name {shlex.quote(name)}" for name in sorted(NOT_SNAPSHOTTED))
        find = f"find . \\( {pruned} \\) -prune -o -type f -printf '%s %P\\n'"
        result = await self._shell(find)
        found = {}
        for line in result.log.decode(errors="replace").splitlines():
            size, _, name = line.partition(" ")
            if name and snapshotted(name):
                found[name] = int(size)
        return found

    async def delete_files(self, paths: Sequence[str]) -> None:
        if paths:
            await self._shell("rm -rf -- " + " ".join(shlex.quote(_rel(p)) for p in paths))

    async def snapshot(self) -> dict[str, bytes]:
        excludes = " ".join(f"--exclude={shlex.quote(name)}" for name in sorted(NOT_SNAPSHOTTED))
        await self._shell(f"tar -czf {ARCHIVE_FROM_WORKSPACE} {excludes} .")
        async with vendor_errors():
            data = bytes(await self.sandbox.files.read(ARCHIVE, format="bytes"))
        return await asyncio.to_thread(unpack, data)

    async def restore(self, files: dict[str, bytes]) -> None:
        kept = " ".join(f"! -name {shlex.quote(name)}" for name in sorted(NOT_SNAPSHOTTED))
        await self._shell(f"find . -mindepth 1 -maxdepth 1 {kept} -exec rm -rf -- {{}} +")
        await self.write_files(files)

    async def pause(self) -> None:
        async with vendor_errors():
            await self.sandbox.pause()

    @timed_sandbox_run("e2b")
    async def run(self, command: Command, on_output: OnOutput | None = None) -> CommandResult:
        output = Output(command.output_limit)
        line = shlex.join(command.as_argv())
        pid: list[int] = []  # known once the command has started

        async def collect(text: str) -> None:
            chunk = text.encode()
            flooding = output.flooding
            output.add(chunk)
            if on_output is not None and len(output.head) < output.limit:
                await on_output(chunk)
            if output.flooding and not flooding and pid:
                await self._kill(pid[0])  # a flood, not a test run: stopped

        async with vendor_errors():
            starting = asyncio.ensure_future(
                self.sandbox.commands.run(
                    line,
                    background=True,
                    cwd=f"{WORKSPACE}/{_rel(command.cwd)}" if command.cwd != "." else WORKSPACE,
                    envs=command.env,
                    timeout=0,  # the wait below bounds it, and kills the command when it ends
                    on_stdout=collect,
                    on_stderr=collect,
                )
            )
            try:
                handle = await asyncio.shield(starting)
            except asyncio.CancelledError:  # cancelled while starting: it still must not run on
                await self._kill((await starting).pid)
                raise
            pid.append(handle.pid)
            try:
                exit_code = await asyncio.wait_for(_exit_code(handle), command.timeout)
            except TimeoutError:
                await self._kill(handle.pid)
                return output.result(-9, timed_out=True)
            except BaseException:  # cancelled: the command must not outlive the activity
                await asyncio.shield(self._kill(handle.pid))
                raise
        return output.result(exit_code, timed_out=False)

    async def _shell(self, line: str) -> CommandResult:
        result = await self.run(Command(shell=line, timeout=REQUEST_TIMEOUT))
        if result.exit_code != 0:
            detail = result.log.decode(errors="replace")[-500:]
            raise Unavailable(f"sandbox housekeeping failed ({line.split()[0]}): {detail}")
        return result

    async def _kill(self, pid: int) -> None:
        try:
            await self.sandbox.commands.kill(pid)
        except SandboxException:
            pass  # already ended, or the sandbox itself is gone


async def _exit_code(handle: Any) -> int:
    try:
        return int((await handle.wait()).exit_code)
    except CommandExitException as err:
        return int(err.exit_code)


def _rel(name: str) -> str:
    return "/".join(parts_of(name))


def _path(name: str) -> str:
    return f"{WORKSPACE}/{_rel(name)}"


def unpack(data: bytes) -> dict[str, bytes]:
    """A snapshot archive's regular files; links and unsafe names are left out."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        for member in archive:
            if not member.isfile():
                continue
            name = member.name.removeprefix("./")
            try:
                parts_of(name)
            except ValueError:
                continue
            extracted = archive.extractfile(member)
            if extracted is not None and snapshotted(name):
                files[name] = extracted.read()
    return files
