"""Sandbox activities: a build opens one session, runs its tests there phase after phase, and
closes it when it ends. A lost session is replaced from the last snapshot, transparently."""

from __future__ import annotations

from dataclasses import replace

import structlog
from temporalio import activity

from activities.errors import BadRequest, activity_boundary
from activities.gitbase import Checkout, check_out_base
from activities.gitrepo import check_names
from activities.sandbox import (
    Command,
    CommandResult,
    SandboxGone,
    SandboxRuntime,
    SandboxSession,
    SessionSpec,
)
from activities.sandbox.projects import (
    MANIFESTS,
    BadManifest,
    Project,
    detect,
    language_of,
    parse_counts,
)
from cofounder.artifacts import ArtifactStore
from cofounder.payloads import SandboxRef, SandboxRequest, TestReport, TestRequest
from cofounder.settings import Settings

log = structlog.get_logger()

SUMMARY_CHARS = 1500


class SandboxActivities:
    """Every sandbox step of a build, on whichever runtime the worker was given."""

    def __init__(self, settings: Settings, store: ArtifactStore, runtime: SandboxRuntime) -> None:
        self.settings = settings
        self.store = store
        self.runtime = runtime

    @activity.defn
    @activity_boundary
    async def open_sandbox(self, request: SandboxRequest) -> SandboxRef:
        """The build's session: created once, reconnected by any retry or other worker. A build
        that brings no files starts from its project's main (when the remote has one): checked
        out into the session, and its snapshot until the first test run takes one."""
        store = self.store.for_owner(request.owner)
        base = await self._base(request)
        language = "python"
        if request.workspace_ref:
            language = language_of(await store.get_json(request.workspace_ref))
        elif base is not None:
            language = language_of(base.files)
        spec = SessionSpec(request.build_id, request.owner, request.project, language)
        session = await self.runtime.open(spec)
        snapshot_ref = None
        if base is not None:
            await _check_out(session, base.files)
            snapshot_ref = await store.put_tree(base.files)
        log.info(
            "sandbox opened",
            build_id=request.build_id,
            session=session.session_id,
            base=base.commit if base else None,
        )
        return SandboxRef(
            session_id=session.session_id,
            runtime=self.runtime.name,
            language=language,
            snapshot_ref=snapshot_ref,
            base_commit=base.commit if base else None,
            base_ref=snapshot_ref,
        )

    async def _base(self, request: SandboxRequest) -> Checkout | None:
        """The project's main as the build first saw it; None for builds from before the agent
        loop, which bring their own files, and for projects without a main yet."""
        if request.workspace_ref is not None or not request.project:
            return None
        check_names(request.owner, request.project, request.build_id)
        remote = self.settings.git_remote(request.owner, request.project)
        return await check_out_base(remote, request.build_id)

    @activity.defn
    @activity_boundary
    async def close_sandbox(self, ref: SandboxRef) -> bool:
        """Kill the session and free it; already gone is fine."""
        closed = await self.runtime.close(ref.session_id)
        log.info("sandbox closed", session=ref.session_id, was_open=closed)
        return closed

    @activity.defn
    @activity_boundary
    async def run_tests(self, request: TestRequest) -> TestReport:
        """Bring the session's workspace to the code's files, install what they declare, run
        the tests; the full log and a snapshot go to the store, the report stays short."""
        store = self.store.for_owner(request.owner)
        ref = request.sandbox
        if ref is None:  # a build from before sessions: a sandbox for this run alone
            ref = await self._open(request, generation=-1)
        session, ref = await reconnect(
            self.runtime, store, ref, request.build_id, request.owner, request.project
        )
        try:
            if request.workspace_ref is not None:
                await _sync(session, await store.get_tree(request.workspace_ref))
            result = await self._test(session, request.test_command)
            snapshot = await store.put_tree(await session.snapshot())
            ref = ref.model_copy(update={"snapshot_ref": snapshot})
            if request.sandbox is not None:
                await session.pause()  # until the build's next phase needs it
        finally:
            if request.sandbox is None:
                await self.runtime.close(ref.session_id)
        return await self._report(request, store, result, ref if request.sandbox else None)

    async def _test(self, session: SandboxSession, test_command: str | None) -> CommandResult:
        """Install what the workspace declares, then run its tests; a failed install is the
        result, with its log."""
        project = await self._project(session)
        installed = await self._install(session, project)
        if installed is not None and installed.exit_code != 0:
            return installed
        command = Command(
            shell=test_command or project.test_command,
            env=project.env,
            timeout=self.settings.sandbox_timeout_seconds,
            output_limit=self.settings.sandbox_output_limit_bytes,
        )
        return await session.run(command)

    async def _project(self, session: SandboxSession) -> Project:
        manifests = {}
        for name in MANIFESTS:
            try:
                manifests[name] = await session.read_file(name)
            except FileNotFoundError:
                continue
        try:
            return detect(
                manifests,
                index_url=self.settings.sandbox_package_index,
                registry=self.settings.sandbox_npm_registry,
            )
        except BadManifest as err:
            raise BadRequest(str(err)) from None

    async def _open(self, request: TestRequest, generation: int) -> SandboxRef:
        language = "python"
        if request.workspace_ref is not None:
            tree = await self.store.for_owner(request.owner).get_json(request.workspace_ref)
            language = language_of(tree)
        spec = SessionSpec(request.build_id, request.owner, request.project, language, generation)
        session = await self.runtime.open(spec)
        return SandboxRef(
            session_id=session.session_id,
            runtime=self.runtime.name,
            language=language,
            generation=generation,
        )

    async def _install(self, session: SandboxSession, project: Project) -> CommandResult | None:
        """Install the declared dependencies, with the network on for this step alone."""
        if project.install_command is None:
            return None
        try:
            if (await session.read_file(project.marker)).decode() == project.manifest_digest:
                return None
        except FileNotFoundError:
            pass
        command = Command(
            shell=project.install_command,
            env=project.env,
            timeout=self.settings.sandbox_install_timeout_seconds,
            output_limit=self.settings.sandbox_output_limit_bytes,
            network=True,
        )
        result = await session.run(command)
        if result.exit_code == 0:
            await session.write_files({project.marker: project.manifest_digest.encode()})
        else:
            note = b"\n[sandbox: installing the declared dependencies failed]\n"
            result = replace(result, log=result.log + note, tail=result.tail + note)
        return result

    async def _report(
        self,
        request: TestRequest,
        store: ArtifactStore,
        result: CommandResult,
        ref: SandboxRef | None,
    ) -> TestReport:
        log_ref = await store.put_bytes(result.log)
        passed_count, failed_count = parse_counts(result.tail)
        log.info(
            "sandbox run finished",
            build_id=request.build_id,
            exit_code=result.exit_code,
            passed=passed_count,
            failed=failed_count,
            timed_out=result.timed_out,
        )
        return TestReport(
            passed=result.exit_code == 0 and not result.timed_out,
            exit_code=result.exit_code,
            passed_count=passed_count,
            failed_count=failed_count,
            summary=summarise(result),
            log_ref=log_ref,
            timed_out=result.timed_out,
            truncated=result.truncated,
            sandbox=ref,
        )


async def reconnect(
    runtime: SandboxRuntime,
    store: ArtifactStore,
    ref: SandboxRef,
    build_id: str,
    owner: str,
    project: str,
) -> tuple[SandboxSession, SandboxRef]:
    """The build's session again; if it is gone, its replacement restored from the last
    snapshot (`store` is the build owner's)."""
    try:
        return await runtime.connect(ref.session_id), ref
    except SandboxGone as gone:
        log.warning("sandbox lost; restoring", build_id=build_id, reason=str(gone))
    spec = SessionSpec(build_id, owner, project, ref.language, ref.generation + 1)
    session = await runtime.open(spec)
    if ref.snapshot_ref:
        await session.restore(await store.get_tree(ref.snapshot_ref))
    new = ref.model_copy(update={"session_id": session.session_id, "generation": spec.generation})
    return session, new


async def _check_out(session: SandboxSession, files: dict[str, bytes]) -> None:
    """Write the base's files the workspace lacks: a retried open completes an interrupted
    checkout and overwrites nothing already there."""
    present = await session.list_files()
    missing = {path: data for path, data in files.items() if path not in present}
    if missing:
        await session.write_files(missing)


async def _sync(session: SandboxSession, files: dict[str, bytes]) -> None:
    """Make the workspace hold exactly the code's files (dependency folders aside)."""
    stale = [path for path in await session.list_files() if path not in files]
    if stale:
        await session.delete_files(stale)
    await session.write_files(files)


def summarise(result: CommandResult) -> str:
    """The tail of the output, with the reason a run was stopped early."""
    text = result.tail.decode(errors="replace").strip()[-SUMMARY_CHARS:]
    if result.timed_out:
        text += "\n[sandbox: timed out]"
    elif result.truncated:
        text += "\n[sandbox: output truncated]"
    return text
