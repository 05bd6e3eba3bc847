"""Sandbox activities: a build opens one session, runs its tests there phase after phase, and
closes it when it ends. A lost session is replaced from the last snapshot, transparently."""

from __future__ import annotations

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.errors import activity_boundary
from activities.events import CommandLog
from activities.gitbase import Checkout, check_out_base
from activities.github.app import GitHubApp
from activities.github.mirror import base_remote
from activities.gitrepo import check_names
from activities.sandbox import SandboxRuntime, SessionSpec
from activities.sandbox.projects import language_of
from activities.sandbox.sessions import check_out_missing, reconnect, sync_files
from activities.sandbox.testing import report, run_project_tests
from cofounder.artifacts import ArtifactStore
from cofounder.payloads import SandboxRef, SandboxRequest, TestReport, TestRequest
from cofounder.settings import Settings

log = structlog.get_logger()


class SandboxActivities:
    """Every sandbox step of a build, on whichever runtime the worker was given."""

    def __init__(
        self,
        settings: Settings,
        store: ArtifactStore,
        runtime: SandboxRuntime,
        github: GitHubApp | None = None,
        sessions: async_sessionmaker[AsyncSession] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.runtime = runtime
        self.github = github
        self.sessions = sessions  # None: test runs are not streamed into the build's events

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
            await check_out_missing(session, base.files)
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
        remote = await base_remote(
            self.settings, self.github, request.owner, request.project, request.repository
        )
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
                await sync_files(session, await store.get_tree(request.workspace_ref))
            commands = CommandLog(self.sessions, request.build_id, request.step)
            result = await run_project_tests(self.settings, session, request.test_command, commands)
            snapshot = await store.put_tree(await session.snapshot())
            ref = ref.model_copy(update={"snapshot_ref": snapshot})
            if request.sandbox is not None:
                await session.pause()  # until the build's next phase needs it
        finally:
            if request.sandbox is None:
                await self.runtime.close(ref.session_id)
        return await report(request, store, result, ref if request.sandbox else None)

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
