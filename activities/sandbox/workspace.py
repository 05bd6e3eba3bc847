"""A local session's workspace as the worker sees it from outside the sandbox.

The sandboxed program owns this folder and may have planted symlinks in it; the worker (often
root) must never follow one, or a link to /etc would let a build read or write the host. Every
path is checked component by component and opened with O_NOFOLLOW.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePosixPath

from activities.sandbox import NOT_SNAPSHOTTED, snapshotted
from activities.sandbox.bwrap import give_to_sandbox
from cofounder.artifacts import UnsafePath


def parts_of(name: str) -> tuple[str, ...]:
    """A workspace-relative path's parts; absolute, empty and `..` paths are refused."""
    path = PurePosixPath(name)
    if path.is_absolute() or not path.parts or ".." in path.parts:
        raise UnsafePath(f"unsafe path in workspace: {name!r}")
    return path.parts


def _parent(root: Path, parts: tuple[str, ...], create: bool) -> Path:
    """The folder holding the last part, refusing any symlink on the way there."""
    folder = root
    for part in parts[:-1]:
        folder = folder / part
        if folder.is_symlink():
            raise UnsafePath(f"path goes through a symlink: {'/'.join(parts)!r}")
        if create and not folder.exists():
            folder.mkdir()
            give_to_sandbox(folder)
    return folder


def write_files(root: Path, files: dict[str, bytes]) -> None:
    for name, data in sorted(files.items()):
        parts = parts_of(name)
        target = _parent(root, parts, create=True) / parts[-1]
        if target.is_symlink():
            target.unlink()  # replace the link itself, never what it points at
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW
        fd = os.open(target, flags, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        give_to_sandbox(target)


def read_file(root: Path, name: str) -> bytes:
    parts = parts_of(name)
    target = _parent(root, parts, create=False) / parts[-1]
    try:
        fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as err:
        raise FileNotFoundError(f"no such file in the workspace: {name!r}") from err
    with os.fdopen(fd, "rb") as src:
        return src.read()


def list_files(root: Path) -> dict[str, int]:
    """Regular files only (a symlink is not followed, nor listed), dependency folders left out."""
    found: dict[str, int] = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if d not in NOT_SNAPSHOTTED]
        for name in files:
            path = Path(folder, name)
            if path.is_symlink() or not path.is_file():
                continue
            rel = path.relative_to(root).as_posix()
            if snapshotted(rel):
                found[rel] = path.lstat().st_size
    return found


def delete_files(root: Path, names: list[str]) -> None:
    for name in names:
        parts = parts_of(name)
        target = _parent(root, parts, create=False) / parts[-1]
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)


def snapshot(root: Path) -> dict[str, bytes]:
    return {name: read_file(root, name) for name in list_files(root)}


def restore(root: Path, files: dict[str, bytes]) -> None:
    """Make the workspace exactly `files`; dependency folders are left to the install step."""
    for entry in root.iterdir():
        if entry.name in NOT_SNAPSHOTTED:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    write_files(root, files)
