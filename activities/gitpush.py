"""Pushing a build's files to its branch on the project's remote, once however often retried."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from activities.errors import BadRequest, CofounderError
from activities.gitcli import GitFailed, git, git_bytes, run_git
from activities.gitrepo import MAIN, workspace_entries
from cofounder.artifacts import UnsafePath, write_tree


@dataclass(frozen=True)
class Pushed:
    head_sha: str
    diff: str
    # What the pushed commit changed over its parent (`git diff --stat`); push_over fills it.
    stat: str = ""


class BranchMoved(CofounderError):
    """The branch's head is not the commit an iteration builds on: someone pushed to it (or
    deleted it) meanwhile. Pushing would throw their work away, and asking again changes nothing."""

    retryable = False


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


async def push_over(
    remote: Path | Remote,
    branch: str,
    parent: str,
    files: dict[str, bytes],
    message: str,
    date: str,
) -> Pushed | None:
    """Commit `files` as the whole tree of `branch` over `parent`, its head, and push it.

    None when `files` are `parent`'s tree: nothing to push, and no empty commit. The commit is
    deterministic, so a retry whose push landed finds it as the head and reuses it; any other
    head means the branch moved under us (BranchMoved). The diff is against the default branch.
    """
    target = remote if isinstance(remote, Remote) else Remote(remote)
    with tempfile.TemporaryDirectory(prefix="cofounder-iterate-") as tmp:
        home, clone = Path(tmp), Path(tmp) / "clone"
        await git("clone", "--quiet", str(target.location), str(clone), home=home, env=target.env)
        head = await _remote_head(clone, branch, home)
        if head is None or not await _has_commit(clone, parent, home):
            raise BranchMoved(_moved(branch, parent, head))
        commit = await _commit_over(clone, parent, files, message, date, home)
        if head not in (parent, commit):
            raise BranchMoved(_moved(branch, parent, head))
        if commit is None:
            return None
        if head == parent:
            await _push_over(clone, branch, parent, commit, home, target.env)
        diff = await git("diff", f"origin/{target.default_branch}...{commit}", cwd=clone, home=home)
        stat = await git("diff", "--stat=200", parent, commit, cwd=clone, home=home)
        return Pushed(head_sha=commit, diff=diff, stat=stat)


async def _commit_over(
    clone: Path, parent: str, files: dict[str, bytes], message: str, date: str, home: Path
) -> str | None:
    """The commit of `files` as the whole tree over `parent`, or None when that is its tree."""
    await git("checkout", "--quiet", "--detach", parent, cwd=clone, home=home)
    await _untrack_workspace_files(clone, parent, home)
    _write_files(clone, files)
    await git("add", "--all", cwd=clone, home=home)
    code, _, _ = await run_git("diff", "--cached", "--quiet", cwd=clone, home=home)
    if code == 0:
        return None
    await git("commit", "--quiet", "--no-verify", "-m", message, cwd=clone, home=home, date=date)
    return (await git("rev-parse", "HEAD", cwd=clone, home=home)).strip()


async def _push_over(
    clone: Path, branch: str, parent: str, commit: str, home: Path, env: Mapping[str, str]
) -> None:
    # The lease makes the push a compare-and-swap: it lands only while the head is `parent`.
    lease = f"--force-with-lease=refs/heads/{branch}:{parent}"
    refspec = f"{commit}:refs/heads/{branch}"
    try:
        await git("push", "--quiet", lease, "origin", refspec, cwd=clone, home=home, env=env)
    except GitFailed:
        await git("fetch", "--quiet", "origin", cwd=clone, home=home, env=env)
        head = await _remote_head(clone, branch, home)
        if head == commit:
            return  # a concurrent attempt pushed the very same commit first
        if head != parent:
            raise BranchMoved(_moved(branch, parent, head)) from None
        raise


async def _has_commit(clone: Path, sha: str, home: Path) -> bool:
    code, _, _ = await run_git("cat-file", "-e", f"{sha}^{{commit}}", cwd=clone, home=home)
    return code == 0


def _moved(branch: str, parent: str, head: str | None) -> str:
    where = f"is at {head[:12]}" if head else "is gone"
    return f"branch {branch} {where}, not at {parent[:12]} where this iteration began"


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
