"""Artifacts in S3 (or any S3-compatible store) through boto3, so workers are interchangeable.

boto3 is synchronous: every call runs in a thread, never on the event loop. Credentials come
from boto3's usual chain (environment, profile, instance or task role), never from our settings.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore.exceptions import ClientError

from cofounder.artifacts import ArtifactNotFound

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3Blobs:
    """Blobs under `prefix` in one bucket."""

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/")

    @classmethod
    def from_url(cls, url: str, endpoint_url: str | None = None) -> S3Blobs:
        """From `s3://bucket/prefix`; `endpoint_url` for an S3-compatible store (or a test's)."""
        parsed = urlparse(url)
        client = boto3.client("s3", endpoint_url=endpoint_url)
        return cls(client, parsed.netloc, parsed.path)

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    async def read(self, key: str) -> bytes:
        try:
            response = await asyncio.to_thread(
                self.client.get_object, Bucket=self.bucket, Key=self._key(key)
            )
        except ClientError as err:
            if _code(err) in _MISSING:
                raise ArtifactNotFound(key) from None
            raise
        body = response["Body"]
        return await asyncio.to_thread(body.read)

    async def write(self, key: str, data: bytes) -> None:
        # One PUT: S3 never shows a partial object.
        await asyncio.to_thread(
            self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data
        )

    async def exists(self, key: str) -> bool:
        try:
            await asyncio.to_thread(self.client.head_object, Bucket=self.bucket, Key=self._key(key))
        except ClientError as err:
            if _code(err) in _MISSING:
                return False
            raise
        return True


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
