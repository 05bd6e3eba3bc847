"""Local git remotes: one bare repository per project, driven by the git CLI.

Everything here is deterministic: fixed identities and dates, no host git configuration, so the
same inputs always give the same commit ids. That is what makes a retried publish a no-op.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from activities.errors import BadRequest
from activities.gitcli import git
from activities.sandbox import snapshotted

MAIN = "main"
# Tracked regular files; links and submodules have no place in a workspace.
FILE_MODES = frozenset({"100644", "100755"})
# Names that end up in filesystem paths and ref names: no separators, no dot-dot tricks.
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_BUILD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_OWNER = _BUILD_ID  # user ids (e.g. Clerk's user_2abc...) become a folder name
# The first commit of every remote, so two workers creating one concurrently make the same one.
INITIAL_DATE = "1704067200 +0000"  # 2024-01-01T00:00:00Z
README = "# {project}\n\nThis repository is managed by cofounder: builds arrive as pull requests.\n"


def check_names(owner: str, project: str, build_id: str) -> None:
    """Refuse (BadRequest) an owner, project or build id that is no safe folder or ref name."""
    if not _PROJECT.fullmatch(project):
        raise BadRequest(f"not a project name: {project!r}")
    if not _BUILD_ID.fullmatch(build_id):
        raise BadRequest(f"not a build id: {build_id!r}")
    if not _OWNER.fullmatch(owner):
        raise BadRequest(f"not an owner id: {owner!r}")


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


def workspace_entries(listing: bytes) -> dict[str, str]:
    """From `git ls-tree -r -z`: the blob id of each file a workspace holds, by path (regular
    files, outside dependency folders)."""
    return {path: sha for path, sha, _ in tracked_files(listing)}


def tracked_files(listing: bytes) -> Iterator[tuple[str, str, int | None]]:
    """From `git ls-tree -r -z`, with `-l` or without: (path, blob id, size when listed) of each
    file a workspace holds."""
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        mode, kind, sha, *size = meta.decode().split()
        path = os.fsdecode(raw_path)
        if kind == "blob" and mode in FILE_MODES and snapshotted(path):
            yield path, sha, int(size[0]) if size else None
