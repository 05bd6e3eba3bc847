"""Content-addressed artifact store: large things live here, workflows carry their references.

A reference is ``sha256:<hex>``. A *tree* is a JSON manifest ``{path: reference}`` stored as an
artifact itself, so a whole workspace travels through history as one short string.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Protocol

from cofounder.payloads import LOCAL_OWNER

if TYPE_CHECKING:
    from cofounder.settings import Settings

PREFIX = "sha256:"

_OWNER = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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


class Blobs(Protocol):
    """Where artifact bytes live, by key: a local folder, or an S3 bucket (cofounder/s3.py)."""

    async def read(self, key: str) -> bytes:
        """The bytes under `key`, or ArtifactNotFound."""
        ...

    async def write(self, key: str, data: bytes) -> None:
        """Store `data` under `key` whole: readers never see a partial object."""
        ...

    async def exists(self, key: str) -> bool: ...


class FolderBlobs:
    """Blobs in a local folder (the default); file work runs off the event loop."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def read(self, key: str) -> bytes:
        try:
            return await asyncio.to_thread((self.root / key).read_bytes)
        except FileNotFoundError:
            raise ArtifactNotFound(key) from None

    async def write(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._write, self.root / key, data)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread((self.root / key).exists)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write then rename, so a crash never leaves a half-written artifact under its hash.
        fd, tmp = tempfile.mkstemp(dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)


class OwnerBlobs:
    """One owner's part of a store: `owners/<owner>/<key>`. Another owner's references name
    nothing here, however they were obtained."""

    def __init__(self, blobs: Blobs, owner: str, legacy: Blobs | None = None) -> None:
        if not _OWNER.fullmatch(owner):
            raise BadReference(f"not an owner id: {owner!r}")
        self.blobs = blobs
        self.prefix = f"owners/{owner}/"
        # The local owner also reads what was stored before artifacts were kept per owner.
        self.legacy = legacy

    async def read(self, key: str) -> bytes:
        try:
            return await self.blobs.read(self.prefix + key)
        except ArtifactNotFound:
            if self.legacy is None:
                raise
            return await self.legacy.read(key)

    async def write(self, key: str, data: bytes) -> None:
        await self.blobs.write(self.prefix + key, data)

    async def exists(self, key: str) -> bool:
        return await self.blobs.exists(self.prefix + key)


class ArtifactStore:
    """Content-addressed artifacts over any `Blobs`; every method is async."""

    def __init__(self, blobs: Blobs) -> None:
        self.blobs = blobs

    @classmethod
    def local(cls, root: Path) -> ArtifactStore:
        return cls(FolderBlobs(root))

    def for_owner(self, owner: str) -> ArtifactStore:
        """The part of this store that belongs to `owner`: what every activity reads and writes."""
        legacy = self.blobs if owner == LOCAL_OWNER else None
        return ArtifactStore(OwnerBlobs(self.blobs, owner, legacy))

    @staticmethod
    def _key(ref: str) -> str:
        if not ref.startswith(PREFIX) or len(ref) != len(PREFIX) + 64:
            raise BadReference(f"not an artifact reference: {ref!r}")
        digest = ref[len(PREFIX) :]
        if not all(c in "0123456789abcdef" for c in digest):
            raise BadReference(f"not an artifact reference: {ref!r}")
        return f"{digest[:2]}/{digest}"

    async def put_bytes(self, data: bytes) -> str:
        ref = PREFIX + hashlib.sha256(data).hexdigest()
        key = self._key(ref)
        if not await self.blobs.exists(key):  # content-addressed: what is there is the same
            await self.blobs.write(key, data)
        return ref

    async def get_bytes(self, ref: str) -> bytes:
        try:
            return await self.blobs.read(self._key(ref))
        except ArtifactNotFound:
            raise ArtifactNotFound(ref) from None

    async def put_json(self, value: Any) -> str:
        return await self.put_bytes(
            json.dumps(value, sort_keys=True, separators=(",", ":")).encode()
        )

    async def get_json(self, ref: str) -> Any:
        return json.loads(await self.get_bytes(ref))

    async def put_tree(self, files: dict[str, bytes]) -> str:
        paths = sorted(files)
        refs = await asyncio.gather(*(self.put_bytes(files[path]) for path in paths))
        return await self.put_json(dict(zip(paths, refs, strict=True)))

    async def get_tree(self, ref: str) -> dict[str, bytes]:
        manifest: dict[str, str] = await self.get_json(ref)
        blobs = await asyncio.gather(*(self.get_bytes(blob) for blob in manifest.values()))
        return dict(zip(manifest, blobs, strict=True))


def open_store(settings: Settings) -> ArtifactStore:
    """The artifact store the settings name: S3 when COFOUNDER_ARTIFACTS is set, else a folder."""
    if settings.artifacts is None:
        return ArtifactStore.local(settings.artifacts_dir)
    from cofounder.s3 import S3Blobs  # boto3 is only imported by stores that use it

    return ArtifactStore(S3Blobs.from_url(settings.artifacts, settings.artifacts_endpoint_url))
