"""Running the git CLI: no host configuration, a fixed identity, and its two failures."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from pathlib import Path

from activities.errors import CofounderError

AUTHOR = ("cofounder", "cofounder@users.noreply.localhost")


class GitUnavailable(CofounderError):
    """git is not installed on this worker; retrying will not install it."""

    retryable = False


class GitFailed(CofounderError):
    """A git command failed; its usual causes (a lock, a full disk, a race) pass, so retry."""


async def git(
    *args: str,
    home: Path,
    cwd: Path | None = None,
    date: str | None = None,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """Run one git command with no host configuration; its stdout, or GitFailed."""
    out = await git_bytes(*args, home=home, cwd=cwd, date=date, input=input, env=env)
    return out.decode(errors="replace")


async def git_bytes(
    *args: str,
    home: Path,
    cwd: Path | None = None,
    date: str | None = None,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> bytes:
    """`git`, with stdout as bytes (file contents)."""
    code, out, err = await run_git(*args, home=home, cwd=cwd, date=date, input=input, env=env)
    if code != 0:
        detail = err.decode(errors="replace").strip()[-500:]
        raise GitFailed(f"git {args[0]} failed ({code}): {detail}")
    return out


async def run_git(
    *args: str,
    home: Path,
    cwd: Path | None = None,
    date: str | None = None,
    input: bytes | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[int, bytes, bytes]:
    """One git command's exit code, stdout and stderr, for commands whose failure says something
    (a merge's conflicts); GitUnavailable without git. `env` adds to git's environment: how a
    credential reaches it without a command line, a URL or a file."""
    extra, env = (
        env,
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "LANG": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
        },
    )
    if date is not None:
        env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    env |= extra or {}
    identity = ["-c", f"user.name={AUTHOR[0]}", "-c", f"user.email={AUTHOR[1]}"]
    options = ["-c", "commit.gpgsign=false", "-c", "core.autocrlf=false"]
    try:
        proc = await asyncio.create_subprocess_exec(
            "git",
            *identity,
            *options,
            *args,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL if input is None else asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except FileNotFoundError:
        raise GitUnavailable("git is not installed on this worker: apt-get install git") from None
    out, err = await proc.communicate(input)
    return proc.returncode or 0, out, err


async def resolve(remote: Path, ref: str) -> str | None:
    """The commit `ref` names in the bare repository `remote`, or None."""
    verify = ["rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"]
    code, out, _ = await run_git("--git-dir", str(remote), *verify, home=remote)
    if code != 0:
        return None
    return out.decode().strip() or None


async def bare(remote: Path, *args: str, input: bytes | None = None) -> bytes:
    """Run a git command in the bare repository `remote`; its stdout as bytes."""
    return await git_bytes("--git-dir", str(remote), *args, home=remote, input=input)
