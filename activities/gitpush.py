"""Pushing a build's files to its branch on the project's remote, once however often retried."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from activities.errors import BadRequest
from activities.gitcli import GitFailed, git, git_bytes
from activities.gitrepo import MAIN, workspace_entries
from cofounder.artifacts import UnsafePath, write_tree


@dataclass(frozen=True)
class Pushed:
    head_sha: str
    diff: str


@dataclass(frozen=True)
class Remote:
    """Where a branch is pushed: a local bare repository or a URL, its default branch, and what
    git's environment needs to reach it (a credential, never in the URL)."""

    location: Path | str
    default_branch: str = MAIN
    env: Mapping[str, str] = field(default_factory=dict, repr=False)


async def push_branch(
    remote: Path | Remote,
    branch: str,
    files: dict[str, bytes],
    message: str,
    date: str,
    base: str | None = None,
) -> Pushed:
    """Commit `files` on `branch` and push it, unless the remote has that branch.

    With `base` (the commit the build started from) the commit's parent is `base` and `files`
    are its whole tree, so a file the build deleted is deleted; without it (builds from before
    checkouts) `files` are laid over main's. An existing remote branch is the result of an
    earlier attempt: its head is reused, so a retry never makes a second commit. The commit
    itself is deterministic for given inputs. The diff is against the default branch, from where
    they meet.
    """
    target = remote if isinstance(remote, Remote) else Remote(remote)
    with tempfile.TemporaryDirectory(prefix="cofounder-publish-") as tmp:
        home, clone = Path(tmp), Path(tmp) / "clone"
        # A local clone copies every object, so `base` is there even where no branch holds it.
        await git("clone", "--quiet", str(target.location), str(clone), home=home, env=target.env)
        head = await _remote_head(clone, branch, home)
        if head is None:
            start = base or f"origin/{target.default_branch}"
            await git("checkout", "--quiet", "-B", branch, start, cwd=clone, home=home)
            if base is not None:
                await _untrack_workspace_files(clone, base, home)
            _write_files(clone, files)
            await git("add", "--all", cwd=clone, home=home)
            commit = ["commit", "--quiet", "--allow-empty", "--no-verify", "-m", message]
            await git(*commit, cwd=clone, home=home, date=date)
            head = (await git("rev-parse", "HEAD", cwd=clone, home=home)).strip()
            head = await _push(clone, branch, head, home, target.env)
        diff = await git("diff", f"origin/{target.default_branch}...{head}", cwd=clone, home=home)
        return Pushed(head_sha=head, diff=diff)


async def _push(clone: Path, branch: str, head: str, home: Path, env: Mapping[str, str]) -> str:
    refspec = f"{head}:refs/heads/{branch}"
    try:
        await git("push", "--quiet", "origin", refspec, cwd=clone, home=home, env=env)
        return head
    except GitFailed:
        # A concurrent attempt may have pushed first; then its branch is the result.
        await git("fetch", "--quiet", "origin", cwd=clone, home=home, env=env)
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


async def _untrack_workspace_files(clone: Path, base: str, home: Path) -> None:
    """Remove the base's files that a workspace holds, so the build's files become the whole of
    them; what no workspace holds (links, submodules, dependency folders) stays as it was."""
    listing = await git_bytes("ls-tree", "-r", "-z", "--full-tree", base, cwd=clone, home=home)
    paths = sorted(workspace_entries(listing))
    if paths:
        spec = b"".join(os.fsencode(path) + b"\0" for path in paths)
        remove = ["rm", "-q", "--pathspec-from-file=-", "--pathspec-file-nul"]
        await git("--literal-pathspecs", *remove, cwd=clone, home=home, input=spec)


def _write_files(root: Path, files: dict[str, bytes]) -> None:
    # A clone's own .git must stay git's: files may not write into it.
    for name in files:
        if ".git" in PurePosixPath(name).parts:
            raise BadRequest(f"unsafe path in workspace: {name!r}")
    try:
        write_tree(root, files)
    except UnsafePath as err:
        raise BadRequest(str(err)) from None
