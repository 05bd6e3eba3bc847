"""Merging a build's branch into main in the project's bare remote, once.

Main fast-forwards to the branch when it has not moved since the branch was made; otherwise a
merge commit by the cofounder bot joins the two. The merge is recorded as
`refs/cofounder/merges/<branch>` in the same ref transaction that moves main, so asking again
(after a crash, or concurrently) finds the first answer instead of merging twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from activities.errors import CofounderError
from activities.gitcli import GitFailed, bare, git_bytes, resolve, run_git
from activities.gitrepo import MAIN

MERGES = "refs/cofounder/merges"
# Main moving under a merge this many times in a row (other merges landing) ends the attempt.
RACES = 5


class MergeConflict(CofounderError):
    """The branch and main change the same lines; nothing was merged."""

    retryable = False

    def __init__(self, branch: str, into: str, paths: list[str]) -> None:
        where = ", ".join(paths) or "some files"
        super().__init__(f"{branch} conflicts with {into} in {where}")
        self.paths = paths


class BranchMissing(CofounderError):
    """The remote has no such branch (or no such remote): there is nothing to merge."""

    retryable = False


@dataclass(frozen=True)
class Merged:
    sha: str  # the branch's head when main fast-forwarded to it, else the merge commit
    fast_forward: bool


async def merge_branch(
    remote: Path, branch: str, message: str, date: str, into: str = MAIN
) -> Merged:
    """Merge `branch` into `into` unless it was merged before; the merge's result either way."""
    record = f"{MERGES}/{branch}"
    for _ in range(RACES):
        head = await _head(remote, branch)
        done = await resolve(remote, record)
        if done is not None:
            return Merged(sha=done, fast_forward=done == head)
        target = await _head(remote, into)
        sha, moves_main = await _merge(remote, branch, into, target, head, message, date)
        moves = f"create {record} {sha}\n"
        if moves_main:
            moves += f"update refs/heads/{into} {sha} {target}\n"
        try:
            # One transaction: main moves only if it is still where it was, and with the record.
            await bare(remote, "update-ref", "--stdin", input=moves.encode())
        except GitFailed:
            continue  # main moved, or a concurrent merge of this branch was recorded first
        return Merged(sha=sha, fast_forward=sha == head)
    raise GitFailed(f"{into} kept moving while {branch} was being merged; try again")


async def _head(remote: Path, branch: str) -> str:
    head = await resolve(remote, f"refs/heads/{branch}") if (remote / "HEAD").is_file() else None
    if head is None:
        raise BranchMissing(f"the project's remote has no branch {branch}")
    return head


async def _merge(
    remote: Path, branch: str, into: str, target: str, head: str, message: str, date: str
) -> tuple[str, bool]:
    """What main becomes, and whether it moves: the branch's head (fast-forward), the branch's
    head again when main already holds it, or a new merge commit."""
    if await _is_ancestor(remote, target, head):
        return head, True
    if await _is_ancestor(remote, head, target):
        return head, False
    merge = ["merge-tree", "--write-tree", "--name-only", "--no-messages", target, head]
    code, out, err = await run_git("--git-dir", str(remote), *merge, home=remote)
    lines = out.decode(errors="replace").splitlines()
    if code == 1:
        raise MergeConflict(branch, into, [line for line in lines[1:] if line])
    if code != 0:
        raise GitFailed(f"git merge-tree failed ({code}): {err.decode(errors='replace')[-500:]}")
    commit = ["commit-tree", lines[0], "-p", target, "-p", head, "-m", message]
    out = await git_bytes("--git-dir", str(remote), *commit, home=remote, date=date)
    return out.decode().strip(), True


async def _is_ancestor(remote: Path, ancestor: str, descendant: str) -> bool:
    check = ["merge-base", "--is-ancestor", ancestor, descendant]
    code, _, err = await run_git("--git-dir", str(remote), *check, home=remote)
    if code > 1:
        raise GitFailed(f"git merge-base failed ({code}): {err.decode(errors='replace')[-500:]}")
    return code == 0
