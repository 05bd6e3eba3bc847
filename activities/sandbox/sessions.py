"""Reconnecting to a build's session (restoring it if lost) and setting its workspace's files."""

from __future__ import annotations

import structlog

from activities.sandbox import SandboxGone, SandboxRuntime, SandboxSession, SessionSpec
from cofounder.artifacts import ArtifactStore
from cofounder.payloads import SandboxRef

log = structlog.get_logger()


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


async def check_out_missing(session: SandboxSession, files: dict[str, bytes]) -> None:
    """Write the base's files the workspace lacks: a retried open completes an interrupted
    checkout and overwrites nothing already there."""
    present = await session.list_files()
    missing = {path: data for path, data in files.items() if path not in present}
    if missing:
        await session.write_files(missing)


async def sync_files(session: SandboxSession, files: dict[str, bytes]) -> None:
    """Make the workspace hold exactly the code's files (dependency folders aside)."""
    stale = [path for path in await session.list_files() if path not in files]
    if stale:
        await session.delete_files(stale)
    await session.write_files(files)
