"""A build's base: the commit of main it starts from, and that commit's files.

The commit is main's head when the build first looks (its plan, or its sandbox), pinned as
`refs/cofounder/bases/<build id>` in the project's remote (outside refs/heads, so no clone shows
it): a retried checkout reads the same files, whatever was merged since, and the publish step
commits on top of the same parent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from activities.gitcli import GitFailed, bare, resolve
from activities.gitrepo import MAIN, tracked_files, workspace_entries

BASES = "refs/cofounder/bases"


@dataclass(frozen=True)
class Checkout:
    """What a build starts from: main's commit when the build opened its sandbox, and its files."""

    commit: str
    files: dict[str, bytes]


async def check_out_base(remote: Path, build_id: str) -> Checkout | None:
    """The commit build `build_id` starts from and its files: main's head the first time it is
    asked, pinned, and the same pinned commit on every later call. None when the project has no
    remote or its remote has no main (the build starts from an empty workspace)."""
    if not (remote / "HEAD").is_file():
        return None
    commit = await _pin(remote, f"{BASES}/{build_id}")
    if commit is None:
        return None
    return Checkout(commit=commit, files=await read_commit(remote, commit))


async def base_listing(remote: Path, build_id: str) -> tuple[str, dict[str, int]] | None:
    """The commit build `build_id` starts from, pinned as `check_out_base` pins it, and the size
    of each of its files, by path: what the architect is shown, without reading any file."""
    if not (remote / "HEAD").is_file():
        return None
    commit = await _pin(remote, f"{BASES}/{build_id}")
    if commit is None:
        return None
    listing = await bare(remote, "ls-tree", "-r", "-z", "-l", "--full-tree", commit)
    return commit, {path: size or 0 for path, _, size in tracked_files(listing)}


async def pinned_base(remote: Path, build_id: str) -> str | None:
    """The base commit pinned for `build_id` when it opened its sandbox, if it was."""
    if not (remote / "HEAD").is_file():
        return None
    return await resolve(remote, f"{BASES}/{build_id}")


async def _pin(remote: Path, ref: str) -> str | None:
    pinned = await resolve(remote, ref)
    if pinned is not None:
        return pinned
    head = await resolve(remote, f"refs/heads/{MAIN}")
    if head is None:
        return None
    try:
        # The empty old value: create it only if absent, so a concurrent pin is never moved.
        await bare(remote, "update-ref", ref, head, "")
    except GitFailed:
        pass  # another attempt pinned it first: theirs stands
    return await resolve(remote, ref)


async def read_commit(remote: Path, commit: str) -> dict[str, bytes]:
    """The files git tracks at `commit` (regular files only; nothing of .git, no dependency
    folders), by path."""
    blobs = workspace_entries(await bare(remote, "ls-tree", "-r", "-z", "--full-tree", commit))
    contents = await _cat_blobs(remote, sorted(set(blobs.values())))
    return {path: contents[sha] for path, sha in blobs.items()}


async def _cat_blobs(remote: Path, shas: list[str]) -> dict[str, bytes]:
    """Blob contents by id, read in one `git cat-file --batch`."""
    if not shas:
        return {}
    out = await bare(remote, "cat-file", "--batch", input="".join(f"{s}\n" for s in shas).encode())
    found, at = {}, 0
    for sha in shas:
        header_end = out.index(b"\n", at)
        size = int(out[at:header_end].split()[2])
        start = header_end + 1
        found[sha] = out[start : start + size]
        at = start + size + 1  # the newline after each object
    return found
