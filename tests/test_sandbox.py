"""The bubblewrap sandbox, for real: counts, isolation, limits, cancellation, missing runtime."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.sandbox import Command, SessionSpec
from activities.sandbox.activities import SandboxActivities
from activities.sandbox.bwrap import SandboxLayout, bwrap_args
from activities.sandbox.local import LocalRuntime
from activities.sandbox.process import run_limited
from cofounder import payloads
from cofounder.artifacts import ArtifactStore, UnsafePath
from cofounder.settings import Settings
from tests.helpers import owned
from tests.package_index import MODULE, package_index

PASSING = "def test_one():\n    assert 1 + 1 == 2\n\ndef test_two():\n    assert 'a' in 'abc'\n"
FAILING = "def test_ok():\n    assert True\n\ndef test_broken():\n    assert 1 == 2\n"


async def run(
    settings: Settings, store: ArtifactStore, files: dict[str, str], **activity_kwargs: Any
) -> payloads.TestReport:
    ref = await store.put_tree(
        {path: textwrap.dedent(text).encode() for path, text in files.items()}
    )
    activities = SandboxActivities(settings, store, LocalRuntime(settings, **activity_kwargs))
    request = payloads.TestRequest(build_id="b1", workspace_ref=ref)
    return await ActivityEnvironment().run(activities.run_tests, request)


def with_settings(settings: Settings, **changes: Any) -> Settings:
    return settings.model_copy(update=changes)


def test_bwrap_args_isolate_by_construction(tmp_path: Path) -> None:
    layout = SandboxLayout(tmp_path / "ws", tmp_path / "etc", ("/opt/py/3.11", "/srv/venv"), True)
    args = bwrap_args("bwrap", layout, ["python", "-m", "pytest"])
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in args
    assert args[args.index("--bind") + 1 : args.index("--bind") + 3] == [
        str(tmp_path / "ws"),
        "/workspace",
    ]
    # Parents are created world-readable before the read-only Python binds.
    assert args.index("/opt") - 1 < args.index("/opt/py/3.11")
    assert args[args.index("/opt") - 3 : args.index("/opt")] == ["--perms", "0755", "--dir"]
    assert args[-3:] == ["python", "-m", "pytest"]
    assert "/usr/bin/setpriv" in args and "--unshare-user" not in args
    env = {args[i + 1]: args[i + 2] for i, a in enumerate(args) if a == "--setenv"}
    assert set(env) == {"PATH", "HOME", "TMPDIR", "LANG", "PYTHONDONTWRITEBYTECODE"} | {
        "PYTEST_DISABLE_PLUGIN_AUTOLOAD"
    }

    # A venv under the host's /tmp (a CI clone, say) stays visible over the scratch /tmp.
    in_tmp = SandboxLayout(layout.workspace, layout.etc, ("/tmp/clone/.venv",), True)
    in_tmp_args = bwrap_args("bwrap", in_tmp, ["x"])
    scratch = in_tmp_args.index("--tmpfs")
    assert in_tmp_args[scratch + 1] == "/tmp"
    assert in_tmp_args.index("/tmp/clone/.venv") > scratch

    rootless = bwrap_args("bwrap", SandboxLayout(layout.workspace, layout.etc, (), False), ["x"])
    assert "--unshare-user" in rootless and "/usr/bin/setpriv" not in rootless


async def test_passing_and_failing_projects(settings: Settings, store: ArtifactStore) -> None:
    green = await run(settings, store, {"tests/test_a.py": PASSING, "app.py": "X = 1\n"})
    assert (green.passed, green.exit_code, green.passed_count, green.failed_count) == (
        True,
        0,
        2,
        0,
    )
    assert b"2 passed" in await owned(store).get_bytes(green.log_ref)

    red = await run(settings, store, {"test_b.py": FAILING})
    assert (red.passed, red.exit_code, red.passed_count, red.failed_count) == (False, 1, 1, 1)
    assert "test_broken" in red.summary and len(red.summary) <= 1600
    assert not red.timed_out and not red.truncated


async def test_network_is_unreachable(settings: Settings, store: ArtifactStore) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # reachable from host
        test = f"""
            import socket, pytest

            @pytest.mark.parametrize("address", [("127.0.0.1", {port}), ("1.1.1.1", 53),
                                                 ("10.0.0.1", 80)])
            def test_connect_fails(address):
                with pytest.raises(OSError):
                    socket.create_connection(address, timeout=2)

            def test_only_loopback():
                assert [name for _, name in socket.if_nameindex()] == ["lo"]
        """
        report = await run(settings, store, {"test_net.py": test})
    assert report.passed and report.passed_count == 4, report.summary


async def test_host_secrets_are_invisible(
    settings: Settings, store: ArtifactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = f"sk-test-{uuid.uuid4().hex}"
    monkeypatch.setenv("COFOUNDER_FAKE_SECRET", secret)
    test = f"""
        import glob, os

        def test_environment_is_minimal():
            print(dict(os.environ))
            assert "COFOUNDER_FAKE_SECRET" not in os.environ
            assert set(os.environ) <= {{"PATH", "HOME", "TMPDIR", "LANG", "PWD",
                                        "PYTHONDONTWRITEBYTECODE", "PYTEST_VERSION",
                                        "PYTEST_CURRENT_TEST", "LC_CTYPE",
                                        "PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTHONPATH"}}

        def test_no_process_holds_it():
            for path in glob.glob("/proc/[0-9]*/environ"):
                try:
                    data = open(path, "rb").read()
                except OSError:
                    continue
                assert b"{secret}" not in data, path
    """
    report = await run(settings, store, {"test_env.py": test})
    assert report.passed and report.passed_count == 2, report.summary
    assert secret.encode() not in await owned(store).get_bytes(report.log_ref)


async def test_filesystem_is_read_only_outside_workspace(
    settings: Settings, store: ArtifactStore
) -> None:
    test = f"""
        import os, pytest

        def test_workspace_and_tmp_are_writable():
            with open("/workspace/out.txt", "w") as f:
                f.write("ok")
            with open("/tmp/scratch", "w") as f:
                f.write("ok")
            with open("/dev/shm/scratch", "w") as f:
                f.write("ok")

        @pytest.mark.parametrize("path", ["/usr/evil", "/etc/evil", "/evil", "/root/evil",
                                          "/dev/evil", {sys.prefix + "/evil"!r},
                                          {sys.base_prefix + "/evil"!r}])
        def test_elsewhere_is_not(path):
            with pytest.raises(OSError):
                open(path, "w")

        def test_host_files_are_not_visible():
            assert os.listdir("/root") == [".pyenv"] or not {sys.base_prefix!r}.startswith("/root")
            assert not os.path.exists({str(Path.cwd() / "pyproject.toml")!r})
            assert not os.path.exists("/home") and not os.path.exists("/etc/shadow")
            assert not os.path.exists({str(settings.data_dir.resolve())!r})
            assert sorted(os.listdir("/etc")) <= ["group", "ld.so.cache", "localtime", "passwd"]

        def test_unprivileged():
            assert os.getuid() == 65534 and os.getgid() == 65534
            status = dict(line.split(":", 1) for line in open("/proc/self/status"))
            assert int(status["CapEff"], 16) == 0 and int(status["CapPrm"], 16) == 0
            assert int(status["CapBnd"], 16) == 0 or os.getuid() != 65534
    """
    report = await run(settings, store, {"test_fs.py": test})
    assert report.passed and report.passed_count == 10, report.summary


async def test_memory_limit(settings: Settings, store: ArtifactStore) -> None:
    test = """
        import pytest

        def test_big_allocation_fails():
            with pytest.raises(MemoryError):
                bytearray(600 * 1024 * 1024)
    """
    report = await run(with_settings(settings, sandbox_memory_mb=300), store, {"test_m.py": test})
    assert report.passed and report.passed_count == 1, report.summary


async def test_file_size_limit_stops_a_runaway_writer(
    settings: Settings, store: ArtifactStore
) -> None:
    test = """
        def test_fill_the_disk():
            with open("huge.bin", "wb") as f:
                for _ in range(10 * 1024):  # 10 GiB, in 1 MiB writes
                    f.write(b"x" * (1024 * 1024))
    """
    limited = with_settings(settings, sandbox_file_size_mb=8)
    report = await run(limited, store, {"test_f.py": test})
    # Python ignores SIGXFSZ, so the write past the limit fails with EFBIG inside the test.
    assert (report.passed, report.failed_count) == (False, 1), report.summary
    assert b"File too large" in await owned(store).get_bytes(report.log_ref)
    # The sandbox is still usable afterwards: the limit stopped one process, not the worker.
    after = await run(limited, store, {"test_ok.py": "def test_ok():\n    assert True\n"})
    assert after.passed, after.summary


@pytest.mark.skipif(os.geteuid() != 0, reason="RLIMIT_NPROC only binds a real host uid (root)")
async def test_process_limit(settings: Settings, store: ArtifactStore) -> None:
    test = """
        import os, time

        def test_fork_bomb_is_stopped():
            children = []
            try:
                for _ in range(200):
                    pid = os.fork()
                    if pid == 0:
                        time.sleep(5)
                        os._exit(0)
                    children.append(pid)
            except OSError:
                pass
            finally:
                for pid in children:
                    os.kill(pid, 9)
            assert len(children) < 40
    """
    report = await run(settings, store, {"test_p.py": test}, max_processes=40)
    assert report.passed and report.passed_count == 1, report.summary


async def test_timeout_kills_the_run(settings: Settings, store: ArtifactStore) -> None:
    marker = unique_sleep()
    test = f"import subprocess\n\ndef test_slow():\n    subprocess.run(['sleep', '{marker}'])\n"
    started = time.monotonic()
    report = await run(
        with_settings(settings, sandbox_timeout_seconds=2), store, {"test_t.py": test}
    )
    assert report.timed_out and not report.passed
    assert time.monotonic() - started < 15
    assert "timed out" in report.summary
    await gone(marker)


async def test_output_cap_truncates_and_stops_a_flood(
    settings: Settings, store: ArtifactStore
) -> None:
    # pytest captures a test's prints, so the flood comes from a plugin writing to the terminal.
    conftest = """
        def pytest_terminal_summary(terminalreporter):
            while True:
                terminalreporter.write_line("x" * 1000)
    """
    files = {"conftest.py": conftest, "test_o.py": PASSING}
    capped = with_settings(settings, sandbox_output_limit_bytes=20_000, sandbox_timeout_seconds=60)
    started = time.monotonic()
    report = await run(capped, store, files)
    assert report.truncated and not report.passed and not report.timed_out
    assert report.exit_code == -9  # stopped, not finished
    assert time.monotonic() - started < 20
    log = await owned(store).get_bytes(report.log_ref)
    assert 20_000 < len(log) < 20_000 + 20_000 and b"output truncated" in log


async def test_missing_bwrap_is_a_clear_permanent_error(
    settings: Settings, store: ArtifactStore, tmp_path: Path
) -> None:
    with pytest.raises(ApplicationError) as caught:
        await run(with_settings(settings, bwrap_path="/nonexistent/bwrap"), store, {"t.py": ""})
    assert caught.value.type == "SandboxUnavailable" and caught.value.non_retryable
    assert "apt-get install bubblewrap" in str(caught.value)

    broken = tmp_path / "bwrap"
    broken.write_text(
        "#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n"
    )
    broken.chmod(0o755)
    with pytest.raises(ApplicationError) as caught:
        await run(with_settings(settings, bwrap_path=str(broken)), store, {"t.py": ""})
    assert caught.value.type == "SandboxUnavailable" and caught.value.non_retryable
    assert "No permissions to create new namespace" in str(caught.value)


def unique_sleep() -> str:
    """A `sleep` argument no other process has, to find the sandboxed process by."""
    return f"{uuid.uuid4().int % 10**6}.25"


async def gone(marker: str) -> None:
    deadline = time.monotonic() + 5
    while processes_with(marker):
        assert time.monotonic() < deadline, "a sandboxed process survived"
        await asyncio.sleep(0.05)


def processes_with(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if entry.name.isdigit() and marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


async def test_cancel_kills_the_sandbox(settings: Settings, store: ArtifactStore) -> None:
    marker = unique_sleep()
    test = f"""
        import subprocess

        def test_hangs():
            subprocess.run(["sleep", "{marker}"])
    """
    ref = await store.put_tree({"test_c.py": textwrap.dedent(test).encode()})
    env = ActivityEnvironment()
    activities = SandboxActivities(settings, store, LocalRuntime(settings))
    task = asyncio.create_task(
        env.run(activities.run_tests, payloads.TestRequest(build_id="b1", workspace_ref=ref))
    )
    deadline = time.monotonic() + 20
    while not processes_with(marker):
        assert time.monotonic() < deadline, "the sandboxed process never started"
        await asyncio.sleep(0.05)

    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await gone(marker)


async def test_rootless_command_line_runs(tmp_path: Path) -> None:
    # A worker that is not root gets the user-namespace variant; as root it still must work.
    (tmp_path / "ws").mkdir()
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "passwd").write_text("")
    (tmp_path / "etc" / "group").write_text("")
    roots = tuple(dict.fromkeys([sys.base_prefix, sys.prefix]))
    layout = SandboxLayout(tmp_path / "ws", tmp_path / "etc", roots, privileged=False)
    code = "import os; open('/workspace/x', 'w').write(str(os.getuid())); print(os.environ)"
    argv = bwrap_args("bwrap", layout, [sys.executable, "-c", code])
    outcome = await run_limited(argv, timeout=30, output_limit=10_000)
    assert outcome.exit_code == 0, outcome.log
    assert (tmp_path / "ws" / "x").read_text() == "65534"


async def test_workspace_paths_cannot_escape(settings: Settings, store: ArtifactStore) -> None:
    with pytest.raises(ApplicationError) as refused:
        await run(settings, store, {"../escaped.py": "x = 1\n"})
    assert refused.value.type == "BadRequest" and refused.value.non_retryable
    assert "unsafe path" in str(refused.value)


async def test_an_infinite_loop_is_stopped_at_the_time_limit(
    settings: Settings, store: ArtifactStore
) -> None:
    test = "def test_spin():\n    while True:\n        pass\n"
    report = await run(
        with_settings(settings, sandbox_timeout_seconds=2), store, {"test_s.py": test}
    )
    assert report.timed_out and not report.passed
    after = await run(settings, store, {"test_ok.py": PASSING})
    assert after.passed, after.summary


async def test_symlinks_planted_in_the_workspace_never_reach_the_host(
    settings: Settings, store: ArtifactStore, tmp_path: Path
) -> None:
    # A host file the sandbox cannot see, which a worker following links would read or clobber.
    host_file = tmp_path / "host-secret.txt"
    host_file.write_text("host only")
    planted = f"""
        import os

        def test_plant():
            os.symlink({str(host_file)!r}, "leak.txt")
            os.symlink({str(tmp_path)!r}, "hostdir")
            os.symlink("/etc", "etc_link")
    """
    runtime = LocalRuntime(settings)
    session = await runtime.open(SessionSpec("b-links", "local", "demo"))
    await session.write_files({"test_plant.py": textwrap.dedent(planted).encode()})
    result = await session.run(Command(shell="python3 -m pytest -q -p no:cacheprovider"))
    assert result.exit_code == 0, result.log

    files = await session.snapshot()
    assert set(files) == {"test_plant.py"}  # links are neither followed nor kept
    with pytest.raises(FileNotFoundError):
        await session.read_file("leak.txt")
    with pytest.raises(UnsafePath):
        await session.read_file("hostdir/host-secret.txt")
    with pytest.raises(UnsafePath):
        await session.write_files({"hostdir/host-secret.txt": b"overwritten"})
    await session.write_files({"leak.txt": b"replaces the link"})
    assert host_file.read_text() == "host only"
    assert await session.read_file("leak.txt") == b"replaces the link"
    await session.delete_files(["etc_link", "hostdir"])
    assert host_file.exists() and Path("/etc/passwd").exists()


async def test_only_the_install_step_reaches_the_network(
    settings: Settings, store: ArtifactStore, tmp_path: Path
) -> None:
    with package_index(tmp_path / "index") as (url, downloads):
        port = url.split(":")[2].split("/")[0]
        test = f"""
            import socket, pytest
            from {MODULE} import greet

            def test_installed_but_offline():
                assert greet("x") == "hello, x"
                with pytest.raises(OSError):
                    socket.create_connection(("127.0.0.1", {port}), timeout=2)
        """
        files = {"requirements.txt": "cofounder-greeting\n", "test_net.py": test}
        report = await run(with_settings(settings, sandbox_package_index=url), store, files)
    assert report.passed and report.passed_count == 1, report.summary
    assert len(downloads) == 1
