"""Project remotes as a founder's history leaves them: commits on main, made with the git CLI."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from activities.gitrepo import ensure_remote
from cofounder.settings import Settings


def git(remote: Path, *args: str) -> str:
    """A git command in the bare repository `remote`; its stdout."""
    return subprocess.run(
        ["git", "--git-dir", str(remote), *args], check=True, capture_output=True, text=True
    ).stdout


def head(remote: Path, ref: str = "main") -> str:
    return git(remote, "rev-parse", ref).strip()


def tree_of(remote: Path, ref: str) -> dict[str, bytes]:
    """Every file of `ref`, by path."""
    names = git(remote, "ls-tree", "-r", "--name-only", ref).split("\n")
    return {name: show(remote, ref, name) for name in names if name}


def show(remote: Path, ref: str, path: str) -> bytes:
    cat = ["git", "--git-dir", str(remote), "show", f"{ref}:{path}"]
    return subprocess.run(cat, check=True, capture_output=True).stdout


async def commit_to_main(
    settings: Settings,
    owner: str,
    project: str,
    files: dict[str, bytes],
    deleted: tuple[str, ...] = (),
    links: dict[str, str] | None = None,
) -> str:
    """Commit `files` (and symlinks `links`, and the deletion of `deleted`) on the project's
    main, as a person pushing to it would; the new head."""
    remote = await ensure_remote(settings.git_dir / owner, project)
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "clone"
        run = ["git", "-c", "user.name=founder", "-c", "user.email=founder@example.com"]
        subprocess.run(["git", "clone", "-q", str(remote), str(clone)], check=True)
        for path, data in files.items():
            (clone / path).parent.mkdir(parents=True, exist_ok=True)
            (clone / path).write_bytes(data)
        for path, target in (links or {}).items():
            (clone / path).symlink_to(target)
        for path in deleted:
            (clone / path).unlink()
        subprocess.run([*run, "add", "--all", "--force"], cwd=clone, check=True)
        subprocess.run([*run, "commit", "-q", "-m", "founder's change"], cwd=clone, check=True)
        subprocess.run(["git", "push", "-q", "origin", "HEAD:main"], cwd=clone, check=True)
    return head(remote)
