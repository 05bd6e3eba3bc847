"""A workspace's tests run in its session: what it declares installed, the run, its report."""

from __future__ import annotations

from dataclasses import replace

import structlog

from activities.errors import BadRequest
from activities.events import CommandLog
from activities.sandbox import Command, CommandResult, SandboxSession
from activities.sandbox.projects import MANIFESTS, BadManifest, Project, detect, parse_counts
from cofounder.artifacts import ArtifactStore
from cofounder.payloads import SandboxRef, TestReport, TestRequest
from cofounder.settings import Settings

log = structlog.get_logger()

SUMMARY_CHARS = 1500


async def run_project_tests(
    settings: Settings,
    session: SandboxSession,
    test_command: str | None,
    commands: CommandLog | None = None,
) -> CommandResult:
    """Install what the workspace declares, then run its tests; a failed install is the
    result, with its log. `commands` streams both into the build's events."""
    commands = commands or CommandLog(None, "")
    project = await _read_project(settings, session)
    installed = await _install(settings, session, project, commands)
    if installed is not None and installed.exit_code != 0:
        return installed
    command = Command(
        shell=test_command or project.test_command,
        env=project.env,
        timeout=settings.sandbox_timeout_seconds,
        output_limit=settings.sandbox_output_limit_bytes,
        purpose="test",
    )
    return await commands.run(session, command)


async def _read_project(settings: Settings, session: SandboxSession) -> Project:
    """What the workspace's manifests declare; a bad manifest is the build's to fix."""
    manifests = {}
    for name in MANIFESTS:
        try:
            manifests[name] = await session.read_file(name)
        except FileNotFoundError:
            continue
    try:
        return detect(
            manifests,
            index_url=settings.sandbox_package_index,
            registry=settings.sandbox_npm_registry,
        )
    except BadManifest as err:
        raise BadRequest(str(err)) from None


async def _install(
    settings: Settings, session: SandboxSession, project: Project, commands: CommandLog
) -> CommandResult | None:
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
        timeout=settings.sandbox_install_timeout_seconds,
        output_limit=settings.sandbox_output_limit_bytes,
        network=True,
        purpose="install",
    )
    result = await commands.run(session, command)
    if result.exit_code == 0:
        await session.write_files({project.marker: project.manifest_digest.encode()})
    else:
        note = b"\n[sandbox: installing the declared dependencies failed]\n"
        result = replace(result, log=result.log + note, tail=result.tail + note)
    return result


async def report(
    request: TestRequest,
    store: ArtifactStore,
    result: CommandResult,
    ref: SandboxRef | None,
) -> TestReport:
    """The run's report: its whole log goes to the store, the report keeps a short summary."""
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


def summarise(result: CommandResult) -> str:
    """The tail of the output, with the reason a run was stopped early."""
    text = result.tail.decode(errors="replace").strip()[-SUMMARY_CHARS:]
    if result.timed_out:
        text += "\n[sandbox: timed out]"
    elif result.truncated:
        text += "\n[sandbox: output truncated]"
    return text
