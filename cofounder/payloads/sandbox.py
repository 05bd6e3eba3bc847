"""A build's sandbox session, the agent's tool runs in it, and its test runs."""

from __future__ import annotations

from pydantic import BaseModel, Field

from cofounder.payloads.build import LOCAL_OWNER, RepositoryLink

SUMMARY_LIMIT = 2000


class ToolOutcomeSummary(BaseModel):
    name: str
    # The call and its result, hashed: the same call answered the same way has the same one.
    signature: str
    is_error: bool = False


class SandboxRequest(BaseModel):
    """Open (or reconnect to) a build's sandbox session."""

    build_id: str
    owner: str = LOCAL_OWNER
    project: str = ""
    workspace_ref: str | None = None  # its files tell the project's language
    repository: RepositoryLink | None = None  # the project's GitHub repository, if linked


class SandboxRef(BaseModel):
    """A build's sandbox session, kept in workflow state for the build's whole life."""

    session_id: str
    runtime: str
    language: str = "python"
    # Bumped when a lost session is replaced from the last snapshot.
    generation: int = 0
    # The workspace to restore a lost session from: the last test run's, or until then the base's.
    snapshot_ref: str | None = None
    # The commit of the project's main the workspace was checked out from; None: it started empty.
    base_commit: str | None = None
    # That commit's files as a snapshot, kept for diffs; None: the workspace started empty.
    base_ref: str | None = None


class ToolsRequest(BaseModel):
    """Run one turn's tool calls in the build's sandbox and answer them in the conversation."""

    build_id: str
    owner: str = LOCAL_OWNER
    project: str = ""
    sandbox: SandboxRef
    response_ref: str
    conversation_ref: str
    # The build's step the calls work on, for its live events; None in older histories.
    step: int | None = None


class ToolsResult(BaseModel):
    conversation_ref: str  # with the tool results appended
    outcomes: list[ToolOutcomeSummary] = Field(default_factory=list)
    changed: bool = False  # the workspace's files may have changed
    sandbox: SandboxRef  # the session, replaced and restored if it was lost


class TestRequest(BaseModel):
    __test__ = False  # not a pytest test class, despite the name
    build_id: str
    # The files to test; None: the session's workspace as the agent left it.
    workspace_ref: str | None = None
    owner: str = LOCAL_OWNER
    project: str = ""
    # None (histories from before sessions): a sandbox just for this run.
    sandbox: SandboxRef | None = None
    # None: the project's own (pytest, or `npm test` for a package.json with a test script).
    test_command: str | None = None
    # The build's step the run tests, for its live events; None in older histories.
    step: int | None = None


class TestReport(BaseModel):
    __test__ = False
    passed: bool
    exit_code: int
    passed_count: int = 0
    failed_count: int = 0
    summary: str = Field(default="", max_length=SUMMARY_LIMIT)
    log_ref: str
    timed_out: bool = False
    truncated: bool = False
    # The session after the run: reconnected, or replaced and restored if it was lost.
    sandbox: SandboxRef | None = None
