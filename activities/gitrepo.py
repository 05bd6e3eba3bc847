"""Local git remotes: one bare repository per project, driven by the git CLI.

Everything here is deterministic: fixed identities and dates, no host git configuration, so the
same inputs always give the same commit ids. That is what makes a retried publish a no-op.
"""

from __future__ import annotations

import asyncio
import errno
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from activities.errors import BadRequest, CofounderError
from activities.sandbox import snapshotted
from cofounder.artifacts import UnsafePath, write_tree

MAIN = "main"
# Tracked regular files; links and submodules have no place in a workspace.
FILE_MODES = frozenset({"100644", "100755"})
AUTHOR = ("cofounder", "cofounder@users.noreply.localhost")
# Names that end up in filesystem paths and ref names: no separators, no dot-dot tricks.
_PROJECT = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_BUILD_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_OWNER = _BUILD_ID  # user ids (e.g. Clerk's user_2abc...) become a folder name
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


def check_names(owner: str, project: str, build_id: str) -> None:
    """Refuse (BadRequest) an owner, project or build id that is no safe folder or ref name."""
    if not _PROJECT.fullmatch(project):
        raise BadRequest(f"not a project name: {project!r}")
    if not _BUILD_ID.fullmatch(build_id):
        raise BadRequest(f"not a build id: {build_id!r}")
    if not _OWNER.fullmatch(owner):
        raise BadRequest(f"not an owner id: {owner!r}")


async def git(
    *args: str,
    home: Path,
    cwd: Path | None = None,
    date: str | None = None,
    input: bytes | None = None,
) -> str:
    """Run one git command with no host configuration; its stdout, or GitFailed."""
    out = await git_bytes(*args, home=home, cwd=cwd, date=date, input=input)
    return out.decode(errors="replace")


async def git_bytes(
    *args: str,
    home: Path,
    cwd: Path | None = None,
    date: str | None = None,
    input: bytes | None = None,
) -> bytes:
    """`git`, with stdout as bytes (file contents)."""
    code, out, err = await run_git(*args, home=home, cwd=cwd, date=date, input=input)
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
) -> tuple[int, bytes, bytes]:
    """One git command's exit code, stdout and stderr, for commands whose failure says something
    (a merge's conflicts); GitUnavailable without git."""
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
    return proc.returncode or 0, out, err


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
    remote: Path,
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
    itself is deterministic for given inputs. The diff is against main, from where they meet.
    """
    with tempfile.TemporaryDirectory(prefix="cofounder-publish-") as tmp:
        home, clone = Path(tmp), Path(tmp) / "clone"
        # A local clone copies every object, so `base` is there even where no branch holds it.
        await git("clone", "--quiet", str(remote), str(clone), home=home)
        head = await _remote_head(clone, branch, home)
        if head is None:
            start = base or f"origin/{MAIN}"
            await git("checkout", "--quiet", "-B", branch, start, cwd=clone, home=home)
            if base is not None:
                await _untrack_workspace_files(clone, base, home)
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


async def _untrack_workspace_files(clone: Path, base: str, home: Path) -> None:
    """Remove the base's files that a workspace holds, so the build's files become the whole of
    them; what no workspace holds (links, submodules, dependency folders) stays as it was."""
    listing = await git_bytes("ls-tree", "-r", "-z", "--full-tree", base, cwd=clone, home=home)
    paths = sorted(workspace_entries(listing))
    if paths:
        spec = b"".join(os.fsencode(path) + b"\0" for path in paths)
        remove = ["rm", "-q", "--pathspec-from-file=-", "--pathspec-file-nul"]
        await git("--literal-pathspecs", *remove, cwd=clone, home=home, input=spec)


def workspace_entries(listing: bytes) -> dict[str, str]:
    """From `git ls-tree -r -z`: the blob id of each file a workspace holds, by path (regular
    files, outside dependency folders)."""
    blobs: dict[str, str] = {}
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, raw_path = entry.partition(b"\t")
        mode, kind, sha = meta.decode().split()
        path = os.fsdecode(raw_path)
        if kind == "blob" and mode in FILE_MODES and snapshotted(path):
            blobs[path] = sha
    return blobs


def _write_files(root: Path, files: dict[str, bytes]) -> None:
    # A clone's own .git must stay git's: files may not write into it.
    for name in files:
        if ".git" in PurePosixPath(name).parts:
            raise BadRequest(f"unsafe path in workspace: {name!r}")
    try:
        write_tree(root, files)
    except UnsafePath as err:
        raise BadRequest(str(err)) from None


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
