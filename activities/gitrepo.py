"""Local git remotes: one bare repository per project, driven by the git CLI.

Everything here is deterministic: fixed identities and dates, no host git configuration, so the
same inputs always give the same commit ids. That is what makes a retried publish a no-op.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from activities.errors import BadRequest, CofounderError
from cofounder.artifacts import UnsafePath, write_tree

MAIN = "main"
AUTHOR = ("cofounder", "cofounder@users.noreply.localhost")
# The first commit of every remote, so two workers creating one concurrently make the same one.
INITIAL_DATE = "1704067200 +0000"  # 2024-01-01T00:00:00Z
README = "# {project}\n\nThis repository is managed by cofounder: builds arrive as pull requests.\n"


class GitUnavailable(CofounderError):
    """git is not installed on this worker; retrying will not install it."""

    retryable = False


class GitFailed(CofounderError):
    """A git command failed; its usual causes (a lock, a full disk, a race) pass, so retry."""


@dataclass(frozen=True)
class Pushed:
    head_sha: str
    diff: str


async def git(
    *args: str,
    home: Path,
    cwd: Path | None = None,
    date: str | None = None,
    input: bytes | None = None,
) -> str:
    """Run one git command with no host configuration; its stdout, or GitFailed."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "LANG": "C",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
    }
    if date is not None:
        env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
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
    if proc.returncode != 0:
        detail = err.decode(errors="replace").strip()[-500:]
        raise GitFailed(f"git {args[0]} failed ({proc.returncode}): {detail}")
    return out.decode(errors="replace")


async def ensure_remote(git_dir: Path, project: str) -> Path:
    """The project's bare repository, created with its initial commit on `main` on first use.

    It is built in a temporary directory and renamed into place: a rename is atomic, so a
    repository that exists is complete, and a concurrent creator simply loses the race.
    """
    remote = git_dir / f"{project}.git"
    if (remote / "HEAD").exists():
        return remote
    git_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=git_dir, prefix=f".{project}-"))
    try:
        bare = tmp / "repo.git"
        await git("init", "--quiet", "--bare", f"--initial-branch={MAIN}", str(bare), home=tmp)
        readme = tmp / "README.md"
        readme.write_text(README.format(project=project))
        blob = await _git_in(bare, tmp, "hash-object", "-w", str(readme))
        listing = f"100644 blob {blob}\tREADME.md\n".encode()
        tree = await _git_in(bare, tmp, "mktree", input=listing)
        commit = await _git_in(bare, tmp, "commit-tree", tree, "-m", "Initial commit")
        await _git_in(bare, tmp, "update-ref", f"refs/heads/{MAIN}", commit)
        try:
            os.rename(bare, remote)
        except OSError as err:
            if err.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return remote


async def _git_in(bare: Path, home: Path, *args: str, input: bytes | None = None) -> str:
    out = await git("--git-dir", str(bare), *args, home=home, date=INITIAL_DATE, input=input)
    return out.strip()


async def push_branch(
    remote: Path, branch: str, files: dict[str, bytes], message: str, date: str
) -> Pushed:
    """Commit `files` over `main` on `branch` and push it, unless the remote has that branch.

    An existing remote branch is the result of an earlier attempt: its head is reused, so a
    retry never makes a second commit. The commit itself is deterministic for given inputs.
    """
    with tempfile.TemporaryDirectory(prefix="cofounder-publish-") as tmp:
        home, clone = Path(tmp), Path(tmp) / "clone"
        await git("clone", "--quiet", str(remote), str(clone), home=home)
        head = await _remote_head(clone, branch, home)
        if head is None:
            await git("checkout", "--quiet", "-B", branch, f"origin/{MAIN}", cwd=clone, home=home)
            _write_files(clone, files)
            await git("add", "--all", cwd=clone, home=home)
            commit = ["commit", "--quiet", "--allow-empty", "--no-verify", "-m", message]
            await git(*commit, cwd=clone, home=home, date=date)
            head = (await git("rev-parse", "HEAD", cwd=clone, home=home)).strip()
            head = await _push(clone, branch, head, home)
        diff = await git("diff", f"origin/{MAIN}...{head}", cwd=clone, home=home)
        return Pushed(head_sha=head, diff=diff)


async def _push(clone: Path, branch: str, head: str, home: Path) -> str:
    try:
        await git("push", "--quiet", "origin", f"{head}:refs/heads/{branch}", cwd=clone, home=home)
        return head
    except GitFailed:
        # A concurrent attempt may have pushed first; then its branch is the result.
        await git("fetch", "--quiet", "origin", cwd=clone, home=home)
        existing = await _remote_head(clone, branch, home)
        if existing is None:
            raise
        return existing


async def _remote_head(clone: Path, branch: str, home: Path) -> str | None:
    try:
        ref = f"refs/remotes/origin/{branch}^{{commit}}"
        out = await git("rev-parse", "--verify", "--quiet", ref, cwd=clone, home=home)
    except GitFailed:
        return None
    return out.strip() or None


def _write_files(root: Path, files: dict[str, bytes]) -> None:
    # A clone's own .git must stay git's: files may not write into it.
    for name in files:
        if ".git" in PurePosixPath(name).parts:
            raise BadRequest(f"unsafe path in workspace: {name!r}")
    try:
        write_tree(root, files)
    except UnsafePath as err:
        raise BadRequest(str(err)) from None
