"""The GitHub double's repositories on disk: real bare repositories, read with the git CLI.

Calls here run git as a subprocess and block; the double's handlers call them through
`asyncio.to_thread`.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

IDENTITY = {
    "GIT_AUTHOR_NAME": "GitHub",
    "GIT_AUTHOR_EMAIL": "noreply@github.com",
    "GIT_COMMITTER_NAME": "GitHub",
    "GIT_COMMITTER_EMAIL": "noreply@github.com",
}


@dataclass(frozen=True)
class Comparison:
    """What a pull request shows of `base...head`."""

    head_sha: str
    base_sha: str
    commits: int
    additions: int
    deletions: int
    changed_files: int


def git(
    git_dir: Path, *args: str, data: bytes | None = None, env: dict[str, str] | None = None
) -> str:
    """A git command in the bare repository `git_dir`; its stdout, stripped."""
    done = subprocess.run(
        ["git", "--git-dir", str(git_dir), *args],
        input=data,
        capture_output=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return done.stdout.decode().strip()


def init_bare(git_dir: Path, default_branch: str, files: dict[str, bytes] | None) -> None:
    """A new bare repository; with `files`, one commit of them on the default branch."""
    git_dir.parent.mkdir(parents=True, exist_ok=True)
    git(git_dir, "init", "--bare", "--quiet", f"--initial-branch={default_branch}")
    if files:
        commit_files(git_dir, default_branch, files, "Initial commit")


def commit_files(git_dir: Path, branch: str, files: dict[str, bytes], message: str) -> str:
    """Commit `files` as the whole tree of a new commit on `branch` (no work tree needed)."""
    with tempfile.TemporaryDirectory() as tmp:
        index = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        for path, data in files.items():
            blob = git(git_dir, "hash-object", "-w", "--stdin", data=data)
            info = f"100644,{blob},{path}"
            git(git_dir, "update-index", "--add", "--cacheinfo", info, env=index)
        tree = git(git_dir, "write-tree", env=index)
    parent = branches(git_dir).get(branch)
    parents = ["-p", parent] if parent else []
    commit = git(git_dir, "commit-tree", tree, *parents, "-m", message, env=IDENTITY)
    git(git_dir, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def branches(git_dir: Path) -> dict[str, str]:
    """Every branch of the repository, name to head commit."""
    listing = git(git_dir, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads/")
    pairs = (line.split(" ") for line in listing.splitlines())
    return {ref.removeprefix("refs/heads/"): sha for ref, sha in pairs}


def compare(git_dir: Path, base_sha: str, head_sha: str) -> Comparison:
    """Commits and line counts of `head` since it left `base`, as a pull request counts them."""
    commits = int(git(git_dir, "rev-list", "--count", f"{base_sha}..{head_sha}"))
    additions = deletions = changed = 0
    for line in git(git_dir, "diff", "--numstat", f"{base_sha}...{head_sha}").splitlines():
        added, deleted, _ = line.split("\t", 2)
        changed += 1
        # Binary files show "-" for both counts.
        additions += int(added) if added != "-" else 0
        deletions += int(deleted) if deleted != "-" else 0
    return Comparison(head_sha, base_sha, commits, additions, deletions, changed)


def merge(git_dir: Path, base: str, head_sha: str, message: str) -> str:
    """A merge commit of `head_sha` into branch `base`, which moves to it; git fails on a
    conflict."""
    base_sha = branches(git_dir)[base]
    tree = git(git_dir, "merge-tree", "--write-tree", base_sha, head_sha)
    parents = ["-p", base_sha, "-p", head_sha]
    commit = git(git_dir, "commit-tree", tree, *parents, "-m", message, env=IDENTITY)
    git(git_dir, "update-ref", f"refs/heads/{base}", commit, base_sha)
    return commit
