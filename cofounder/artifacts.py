"""Content-addressed artifact store: large things live here, workflows carry their references.

A reference is ``sha256:<hex>``. A *tree* is a JSON manifest ``{path: reference}`` stored as an
artifact itself, so a whole workspace travels through history as one short string.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

PREFIX = "sha256:"


class ArtifactNotFound(KeyError):
    """A well-formed reference to nothing the store holds."""


class BadReference(ValueError):
    """A string that is not an artifact reference at all."""


class UnsafePath(ValueError):
    """A tree path that would land outside the folder it is written to."""


def write_tree(root: Path, files: dict[str, bytes]) -> None:
    """Write a tree's files under `root`, refusing absolute, empty and `..` paths."""
    for name, data in sorted(files.items()):
        path = PurePosixPath(name)
        if path.is_absolute() or not path.parts or ".." in path.parts:
            raise UnsafePath(f"unsafe path in workspace: {name!r}")
        target = root.joinpath(*path.parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


class ArtifactStore:
    """Local folder backend; S3 will implement the same four methods."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, ref: str) -> Path:
        if not ref.startswith(PREFIX) or len(ref) != len(PREFIX) + 64:
            raise BadReference(f"not an artifact reference: {ref!r}")
        digest = ref[len(PREFIX) :]
        if not all(c in "0123456789abcdef" for c in digest):
            raise BadReference(f"not an artifact reference: {ref!r}")
        return self.root / digest[:2] / digest

    def put_bytes(self, data: bytes) -> str:
        ref = PREFIX + hashlib.sha256(data).hexdigest()
        path = self._path(ref)
        if path.exists():
            return ref
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves a half-written artifact under its hash.
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
        return ref

    def get_bytes(self, ref: str) -> bytes:
        path = self._path(ref)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise ArtifactNotFound(ref) from None

    def put_text(self, text: str) -> str:
        return self.put_bytes(text.encode())

    def get_text(self, ref: str) -> str:
        return self.get_bytes(ref).decode()

    def put_json(self, value: Any) -> str:
        return self.put_bytes(json.dumps(value, sort_keys=True, separators=(",", ":")).encode())

    def get_json(self, ref: str) -> Any:
        return json.loads(self.get_bytes(ref))

    def put_tree(self, files: dict[str, bytes]) -> str:
        return self.put_json({path: self.put_bytes(data) for path, data in sorted(files.items())})

    def get_tree(self, ref: str) -> dict[str, bytes]:
        manifest: dict[str, str] = self.get_json(ref)
        return {path: self.get_bytes(blob) for path, blob in manifest.items()}
