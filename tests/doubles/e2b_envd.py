"""envd for the E2B double: the edge proxy's checks, `/health`, `/files` and the filesystem RPCs.

The proxy answers for envd when the sandbox is gone or paused (502 "... was not found", which the
SDK turns into `SandboxNotRunningException`); envd itself refuses a wrong `X-Access-Token` (401).
"""

from __future__ import annotations

import asyncio
import email.parser
import gzip
import os
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from e2b.connection_config import ConnectionConfig
from e2b.envd.client_shared import ENVD_JSON_CODEC
from e2b.envd.filesystem import filesystem_connect
from e2b.envd.filesystem import filesystem_pb as fs
from e2b.envd.process.process_connect import ProcessASGIApplication
from protobuf.wkt import Timestamp
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from tests.doubles.e2b_process import ProcessService

if TYPE_CHECKING:
    from connectrpc.request import RequestContext

    from tests.doubles.e2b_state import Registry, Sandbox

FileType = fs.FileType


def envd_app(registry: Registry) -> ASGIApp:
    """The ASGI app for requests routed to a sandbox (those with an `E2b-Sandbox-Id` header)."""
    files = EnvdFiles(registry)
    rpc: dict[str, ASGIApp] = {
        "/process.Process/": ProcessASGIApplication(
            ProcessService(registry), codecs=[ENVD_JSON_CODEC]
        ),
        "/filesystem.Filesystem/": filesystem_connect.FilesystemASGIApplication(
            FilesystemService(registry), codecs=[ENVD_JSON_CODEC]
        ),
    }
    plain = Router(
        routes=[
            Route("/health", files.health, methods=["GET"]),
            Route("/files", files.download, methods=["GET"]),
            Route("/files", files.upload, methods=["POST"]),
        ]
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        refusal = _refusal(registry, scope)
        if refusal is not None:
            return await refusal(scope, receive, send)
        prefix = next((p for p in rpc if scope["path"].startswith(p)), None)
        await (rpc[prefix] if prefix else plain)(scope, receive, send)

    return app


def _refusal(registry: Registry, scope: Scope) -> Response | None:
    headers = Headers(scope=scope)
    sandbox_id = headers.get("e2b-sandbox-id", "")
    sandbox = registry.live(sandbox_id)
    if sandbox is None or sandbox.state != "running":
        return _proxy_error(sandbox_id, f"The sandbox {sandbox_id} was not found")
    if headers.get("e2b-sandbox-port") != str(ConnectionConfig.envd_port):
        return _proxy_error(sandbox_id, "The sandbox is running but port is not open")
    if scope["path"] != "/health" and headers.get("x-access-token") != sandbox.access_token:
        return PlainTextResponse("unauthorized access, please provide a valid access token", 401)
    return None


def _proxy_error(sandbox_id: str, message: str) -> Response:
    return JSONResponse({"sandboxId": sandbox_id, "message": message, "code": 502}, 502)


def _error(status: int, message: str) -> Response:
    return JSONResponse({"code": status, "message": message}, status)


class EnvdFiles:
    """envd's plain HTTP routes; the proxy checks have passed, so the sandbox is running."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _sandbox(self, request: Request) -> Sandbox:
        sandbox = self.registry.live(request.headers["e2b-sandbox-id"])
        assert sandbox is not None
        return sandbox

    async def health(self, request: Request) -> Response:
        return Response(status_code=204)

    async def download(self, request: Request) -> Response:
        path = request.query_params.get("path", "")
        host = self._sandbox(request).host_path(path)
        if not host.exists():
            return _error(404, f"path '{path}' does not exist")
        if host.is_dir():
            return _error(400, f"path '{path}' is a directory")
        data = await asyncio.to_thread(host.read_bytes)
        return Response(data, media_type="application/octet-stream")

    async def upload(self, request: Request) -> Response:
        sandbox = self._sandbox(request)
        body = await request.body()
        if request.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        content_type = request.headers.get("content-type", "")
        query_path = request.query_params.get("path")
        if content_type.startswith("multipart/form-data"):
            parts = parse_multipart(content_type, body)
            if query_path is not None and len(parts) == 1:
                parts = [(query_path, parts[0][1])]
        elif query_path is not None:
            parts = [(query_path, body)]
        else:
            return _error(400, "the path query parameter is required")
        written = [await asyncio.to_thread(_write, sandbox, p, data) for p, data in parts]
        return JSONResponse(written)


def _write(sandbox: Sandbox, path: str, data: bytes) -> dict[str, str]:
    host = sandbox.host_path(path)
    host.parent.mkdir(parents=True, exist_ok=True)
    host.write_bytes(data)
    return {"name": host.name, "type": "file", "path": sandbox.sandbox_path(host)}


def parse_multipart(content_type: str, body: bytes) -> list[tuple[str, bytes]]:
    """(filename, data) of each part. A small parser of our own: Starlette's form parsing needs
    python-multipart, which the project does not install."""
    boundary = email.parser.HeaderParser().parsestr(f"Content-Type: {content_type}\n\n")
    delimiter = b"--" + str(boundary.get_boundary()).encode()
    parts = []
    for chunk in body.split(delimiter)[1:-1]:
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        headers = email.parser.BytesHeaderParser().parsebytes(head + b"\r\n\r\n")
        parts.append((headers.get_filename() or "", data.removesuffix(b"\r\n")))
    return parts


class FilesystemService(filesystem_connect.Filesystem):
    """`filesystem.Filesystem` over the sandbox roots; file work runs in threads."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _resolve(
        self, ctx: RequestContext, path: str, *, must_exist: bool = True
    ) -> tuple[Sandbox, Path]:
        sandbox = self.registry.live(ctx.request_headers.get("e2b-sandbox-id", ""))
        if sandbox is None:
            raise ConnectError(Code.UNAVAILABLE, "The sandbox was not found")
        host = sandbox.host_path(path)
        if must_exist and not os.path.lexists(host):
            raise ConnectError(Code.NOT_FOUND, f"path '{path}' does not exist")
        return sandbox, host

    async def stat(self, request: fs.StatRequest, ctx: RequestContext) -> fs.StatResponse:
        sandbox, host = self._resolve(ctx, request.path)
        return fs.StatResponse(entry=await _entry(sandbox, host))

    async def make_dir(self, request: fs.MakeDirRequest, ctx: RequestContext) -> fs.MakeDirResponse:
        sandbox, host = self._resolve(ctx, request.path, must_exist=False)
        if os.path.lexists(host):
            raise ConnectError(Code.ALREADY_EXISTS, f"path '{request.path}' already exists")
        try:
            await asyncio.to_thread(host.mkdir, parents=True)
        except FileExistsError:  # made meanwhile by a concurrent request, as envd would say
            raise ConnectError(
                Code.ALREADY_EXISTS, f"path '{request.path}' already exists"
            ) from None
        return fs.MakeDirResponse(entry=await _entry(sandbox, host))

    async def move(self, request: fs.MoveRequest, ctx: RequestContext) -> fs.MoveResponse:
        sandbox, source = self._resolve(ctx, request.source)
        _, destination = self._resolve(ctx, request.destination, must_exist=False)
        await asyncio.to_thread(_move, source, destination)
        return fs.MoveResponse(entry=await _entry(sandbox, destination))

    async def list_dir(self, request: fs.ListDirRequest, ctx: RequestContext) -> fs.ListDirResponse:
        sandbox, host = self._resolve(ctx, request.path)
        if not host.is_dir():
            raise ConnectError(Code.INVALID_ARGUMENT, f"path '{request.path}' is not a directory")
        paths = await asyncio.to_thread(_walk, host, max(request.depth, 1))
        return fs.ListDirResponse(entries=[await _entry(sandbox, p) for p in paths])

    async def remove(self, request: fs.RemoveRequest, ctx: RequestContext) -> fs.RemoveResponse:
        _, host = self._resolve(ctx, request.path)
        await asyncio.to_thread(_remove, host)
        return fs.RemoveResponse()


def _remove(host: Path) -> None:
    if host.is_dir() and not host.is_symlink():
        shutil.rmtree(host)
    else:
        host.unlink()


def _move(source: Path, destination: Path) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    source.rename(destination)


def _walk(directory: Path, depth: int) -> list[Path]:
    found = []
    for child in sorted(directory.iterdir()):
        found.append(child)
        if depth > 1 and child.is_dir() and not child.is_symlink():
            found.extend(_walk(child, depth - 1))
    return found


async def _entry(sandbox: Sandbox, host: Path) -> fs.EntryInfo:
    return await asyncio.to_thread(entry_info, sandbox, host)


def entry_info(sandbox: Sandbox, host: Path) -> fs.EntryInfo:
    """envd's view of a path: a symlink reports its target's type and `is_symlink`."""
    link = host.lstat()
    is_symlink = stat.S_ISLNK(link.st_mode)
    target = host.stat() if is_symlink and host.exists() else link
    return fs.EntryInfo(
        name=host.name,
        type=FileType.DIRECTORY if stat.S_ISDIR(target.st_mode) else FileType.FILE,
        path=sandbox.sandbox_path(host),
        size=target.st_size,
        mode=stat.S_IMODE(target.st_mode),
        permissions=stat.filemode(target.st_mode),
        owner="user",
        group="user",
        modified_time=Timestamp.from_datetime(datetime.fromtimestamp(target.st_mtime, UTC)),
        symlink_target=os.readlink(host) if is_symlink else None,
        is_symlink=is_symlink,
    )
