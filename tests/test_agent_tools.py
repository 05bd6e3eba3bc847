"""The coder's tools, run against a real session on both sandbox runtimes."""

from __future__ import annotations

import time
from typing import Any

import pytest
import pytest_asyncio

from activities.agent.tools import (
    CODER_TOOLS,
    TOOL_NAMES,
    ToolLimits,
    ToolOutcome,
    execute,
    tool_result_block,
)
from activities.sandbox import SandboxGone, SandboxRuntime, SandboxSession, SessionSpec
from cofounder.artifacts import ArtifactStore
from tests.sandbox_runtimes import destroy

SPEC = SessionSpec("b-tools", "alice", "demo")
LIMITS = ToolLimits(command_timeout=60)
APP = "import os\n\n\ndef greet(name):\n    return f'hello, {name}'\n"
# 5,000 numbered lines of 10 characters: 50,000 characters whose end is easy to recognise.
FIFTY_THOUSAND = "i=0; while [ $i -lt 5000 ]; do printf '%09d\\n' $i; i=$((i+1)); done"


@pytest_asyncio.fixture
async def session(runtime: SandboxRuntime) -> SandboxSession:
    opened = await runtime.open(SPEC)
    await opened.write_files(
        {
            "app.py": APP.encode(),
            "src/pkg/util.py": b"def helper():\n    return 42\n",
            "node_modules/dep/index.js": b"def helper() {}\n",
            ".git/config": b"[core]\n",
        }
    )
    return opened


@pytest.fixture
def owned(store: ArtifactStore) -> ArtifactStore:
    return store.for_owner(SPEC.owner)


async def call(
    session: SandboxSession,
    store: ArtifactStore,
    name: str,
    limits: ToolLimits = LIMITS,
    **tool_input: Any,
) -> ToolOutcome:
    return await execute(session, store, name, tool_input, limits)


def test_definitions_are_built_from_the_input_models() -> None:
    assert [tool["name"] for tool in CODER_TOOLS] == list(TOOL_NAMES)
    assert TOOL_NAMES[0] == "list_files" and TOOL_NAMES[-1] == "run_command"
    by_name = {tool["name"]: tool for tool in CODER_TOOLS}
    edit = by_name["edit_file"]["input_schema"]
    assert edit["required"] == ["path", "old", "new"]
    assert edit["additionalProperties"] is False
    assert edit["properties"]["old"]["minLength"] == 1
    command = by_name["run_command"]["input_schema"]["properties"]["timeout_seconds"]
    assert (command["minimum"], command["maximum"], command["default"]) == (1, 600, 120)
    assert all(tool["description"] for tool in CODER_TOOLS)


def test_tool_result_block() -> None:
    ok = tool_result_block("toolu_1", ToolOutcome("wrote a.py", changed=True))
    assert ok == {"type": "tool_result", "tool_use_id": "toolu_1", "content": "wrote a.py"}
    failed = tool_result_block("toolu_2", ToolOutcome("no such file", is_error=True))
    assert failed["is_error"] is True and failed["content"] == "no such file"


async def test_list_files_with_sizes_and_a_cap(
    session: SandboxSession, owned: ArtifactStore
) -> None:
    listed = await call(session, owned, "list_files")
    assert not listed.is_error and not listed.changed
    lines = listed.content.splitlines()
    assert lines[0] == "2 files under .:"
    assert f"app.py ({len(APP)} bytes)" in lines
    assert "src/pkg/util.py (28 bytes)" in lines
    assert not any("node_modules" in line or ".git" in line for line in lines)

    sub = await call(session, owned, "list_files", path="src/")
    assert sub.content.splitlines() == ["1 files under src:", "src/pkg/util.py (28 bytes)"]
    assert (await call(session, owned, "list_files", path="nowhere")).is_error

    await session.write_files({f"many/f{i:02}.txt": b"x" for i in range(12)})
    capped = await call(session, owned, "list_files", ToolLimits(max_list_entries=5), path="many")
    lines = capped.content.splitlines()
    assert lines[0] == "12 files under many:" and lines[1:6] == [
        f"many/f{i:02}.txt (1 bytes)" for i in range(5)
    ]
    assert lines[6] == "…(7 more files not shown; list a folder to see them)"


async def test_read_whole_range_and_missing(session: SandboxSession, owned: ArtifactStore) -> None:
    whole = await call(session, owned, "read_file", path="app.py")
    assert (whole.content, whole.is_error) == (APP, False)

    part = await call(session, owned, "read_file", path="app.py", start_line=4, end_line=5)
    assert part.content == "app.py: lines 4–5 of 5\ndef greet(name):\n    return f'hello, {name}'\n"
    tail = await call(session, owned, "read_file", path="app.py", start_line=5, end_line=99)
    assert tail.content.splitlines()[0] == "app.py: lines 5–5 of 5"
    past = await call(session, owned, "read_file", path="app.py", start_line=6)
    assert past.is_error and "has 5 lines" in past.content
    backwards = await call(session, owned, "read_file", path="app.py", start_line=3, end_line=2)
    assert backwards.is_error and "end_line must not be before start_line" in backwards.content

    missing = await call(session, owned, "read_file", path="src/nope.py")
    assert missing.is_error
    assert missing.content == "read_file failed: no such file in the workspace: 'src/nope.py'"
    folder = await call(session, owned, "read_file", path="src/pkg")
    assert folder.is_error and "'src/pkg' is a folder" in folder.content
    # Reading may look inside .git; only changing it is refused.
    assert (await call(session, owned, "read_file", path=".git/config")).content == "[core]\n"

    await session.write_files({"big.txt": b"0123456789" * 30})
    cut = await call(session, owned, "read_file", ToolLimits(max_read_chars=100), path="big.txt")
    assert cut.content.startswith("0123456789" * 10 + "\n…(cut: showing 100 of 300 characters")


async def test_write_then_read_back(session: SandboxSession, owned: ArtifactStore) -> None:
    content = "print('héllo')\n"
    wrote = await call(session, owned, "write_file", path="new/deep/main.py", content=content)
    assert (wrote.is_error, wrote.changed) == (False, True)
    assert wrote.content == f"wrote new/deep/main.py ({len(content)} characters)"
    assert await session.read_file("new/deep/main.py") == content.encode()
    assert (await call(session, owned, "read_file", path="new/deep/main.py")).content == content
    blocked = await call(session, owned, "write_file", path="app.py/inner.py", content="x")
    assert blocked.is_error and not blocked.changed and "is a file, not a folder" in blocked.content


async def test_edit_replaces_exactly_one_occurrence(
    session: SandboxSession, owned: ArtifactStore
) -> None:
    edited = await call(
        session, owned, "edit_file", path="app.py", old="f'hello, {name}'", new="f'hi, {name}!'"
    )
    assert (edited.content, edited.is_error, edited.changed) == ("edited app.py", False, True)
    expected = APP.replace("f'hello, {name}'", "f'hi, {name}!'")
    assert (await session.read_file("app.py")).decode() == expected

    absent = await call(session, owned, "edit_file", path="app.py", old="goodbye", new="x")
    assert absent.is_error and not absent.changed and "does not occur" in absent.content
    twice = await call(session, owned, "edit_file", path="app.py", old="name", new="who")
    assert twice.is_error and "occurs 2 times" in twice.content
    assert "add surrounding lines" in twice.content
    assert (await session.read_file("app.py")).decode() == expected

    missing = await call(session, owned, "edit_file", path="nope.py", old="a", new="b")
    assert missing.is_error and "no such file" in missing.content


async def test_delete_files_and_folders(session: SandboxSession, owned: ArtifactStore) -> None:
    deleted = await call(session, owned, "delete_file", path="app.py")
    assert (deleted.content, deleted.changed) == ("deleted app.py", True)
    assert "app.py" not in await session.list_files()
    again = await call(session, owned, "delete_file", path="app.py")
    assert again.is_error and not again.changed and "no such file" in again.content

    folder = await call(session, owned, "delete_file", path="src")
    assert folder.content == "deleted src (1 files)"
    assert list(await session.list_files()) == [".git/config"]


async def test_search_files(session: SandboxSession, owned: ArtifactStore) -> None:
    found = await call(session, owned, "search_files", pattern=r"def \w+\(")
    assert not found.is_error
    # Sorted here only because grep's order follows the directory's.
    assert sorted(found.content.splitlines()) == [
        "app.py:4:def greet(name):",
        "src/pkg/util.py:1:def helper():",
    ]
    inside = await call(session, owned, "search_files", pattern="return", path="src")
    assert inside.content == "src/pkg/util.py:2:    return 42"

    none = await call(session, owned, "search_files", pattern="no such text anywhere")
    assert not none.is_error and none.content.startswith("no matches")
    bad = await call(session, owned, "search_files", pattern="greet(")
    assert bad.is_error and bad.content.startswith("search_files failed: grep:")
    nowhere = await call(session, owned, "search_files", pattern="x", path="nope")
    assert nowhere.is_error and "No such file or directory" in nowhere.content

    await session.write_files({"many.txt": b"hit\n" * 30})
    capped = await call(
        session, owned, "search_files", ToolLimits(max_search_lines=10), pattern="^hit$"
    )
    lines = capped.content.splitlines()
    assert lines[:10] == [f"many.txt:{n}:hit" for n in range(1, 11)]
    assert lines[10] == "…(20 more matching lines not shown; narrow the search)"


async def test_run_command_exit_code_and_output(
    session: SandboxSession, owned: ArtifactStore
) -> None:
    ran = await call(session, owned, "run_command", command="cat app.py | wc -l; exit 3")
    assert (ran.is_error, ran.changed) == (False, True)
    assert ran.content.splitlines() == ["exit code 3", "5"]
    assert ran.log_ref is not None and await owned.get_bytes(ran.log_ref) == b"5\n"

    made = await call(session, owned, "run_command", command="echo made > out.txt")
    assert made.content == "exit code 0\n(no output)"
    assert await session.read_file("out.txt") == b"made\n"


async def test_run_command_shows_only_the_tail(
    session: SandboxSession, owned: ArtifactStore
) -> None:
    full = "".join(f"{i:09}\n" for i in range(5000))
    ran = await call(session, owned, "run_command", command=FIFTY_THOUSAND)
    assert ran.log_ref is not None and await owned.get_bytes(ran.log_ref) == full.encode()
    head, _, shown = ran.content.partition("…")
    assert head == "exit code 0\n(last 8000 of 50000 characters of output)\n"
    assert shown == full[-8000:] and shown.startswith("000004200\n")

    # Past four times the limit a command counts as a flood and is stopped: stay below that.
    small = ToolLimits(output_limit=20_000)
    cut = await call(session, owned, "run_command", small, command=FIFTY_THOUSAND)
    assert cut.content.startswith("exit code 0; its output passed 20000 bytes")
    assert cut.content.endswith("000004999\n")
    assert cut.log_ref is not None and b"output truncated" in await owned.get_bytes(cut.log_ref)


async def test_run_command_timeout(session: SandboxSession, owned: ArtifactStore) -> None:
    started = time.monotonic()
    limits = ToolLimits(command_timeout=1)
    slow = await call(
        session, owned, "run_command", limits, command="echo started; sleep 30", timeout_seconds=20
    )
    assert time.monotonic() - started < 15
    assert slow.content.startswith("timed out after 1 seconds and was stopped")
    assert "started" in slow.content and slow.log_ref is not None


@pytest.mark.parametrize(
    ("name", "tool_input", "message"),
    [
        ("write_file", {"path": "a.py"}, "invalid write_file input: content: Field required"),
        ("read_file", {"path": "a.py", "start_line": "2"}, "start_line: Input should be"),
        ("run_command", {"command": "ls", "timeout_seconds": 601}, "less than or equal to 600"),
        ("list_files", {"path": ".", "recursive": True}, "recursive: Extra inputs are not"),
        ("read_file", {"path": "../x"}, "path: Value error, must not contain '..'"),
        ("read_file", {"path": "/etc/passwd"}, "must be a relative POSIX path"),
        ("write_file", {"path": ".git/config", "content": ""}, "must not change anything inside"),
        ("delete_file", {"path": ".git"}, "must not change anything inside .git"),
        ("edit_file", {"path": "app.py", "old": "", "new": "x"}, "old: String should have at"),
        ("search_files", {"pattern": "a\x00b"}, "must not contain NUL"),
        ("list_files", ["app.py"], "Input should be a valid dictionary"),
    ],
)
async def test_invalid_input_is_the_models_to_fix(
    session: SandboxSession, owned: ArtifactStore, name: str, tool_input: object, message: str
) -> None:
    outcome = await execute(session, owned, name, tool_input, LIMITS)
    assert outcome.is_error and not outcome.changed
    assert outcome.content.startswith(f"invalid {name} input: ") and message in outcome.content
    assert (await session.read_file(".git/config")) == b"[core]\n"


async def test_unknown_tool(session: SandboxSession, owned: ArtifactStore) -> None:
    outcome = await execute(session, owned, "rm_rf", {}, LIMITS)
    assert outcome.is_error
    assert outcome.content == (
        "unknown tool 'rm_rf'; the tools are: list_files, read_file, search_files, write_file, "
        "edit_file, delete_file, run_command"
    )


async def test_a_lost_sandbox_is_raised_not_told_to_the_model(
    runtime: SandboxRuntime, session: SandboxSession, owned: ArtifactStore
) -> None:
    await destroy(runtime, session.session_id)
    with pytest.raises(SandboxGone):
        await call(session, owned, "read_file", path="app.py")
