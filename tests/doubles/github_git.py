"""Git over smart HTTP for the GitHub double: `git http-backend`, run as a CGI program per
request, serves the real bare repositories, behind the installation tokens of the REST API.

The request body streams into the program, then its output streams back, so a push is a real
receive-pack; branches a push creates are counted by comparing the refs around it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from tests.doubles.github_auth import token_of
from tests.doubles.github_repos import branches
from tests.doubles.github_state import Registry, Repository

SERVICES = ("info/refs", "git-upload-pack", "git-receive-pack")
# Request headers http-backend reads from the CGI environment.
PASSED_HEADERS = {
    "content-type": "CONTENT_TYPE",
    "content-length": "CONTENT_LENGTH",
    "content-encoding": "HTTP_CONTENT_ENCODING",
    "git-protocol": "HTTP_GIT_PROTOCOL",
}


def refused(status: int, message: str) -> Response:
    # GitHub asks for Basic credentials; git then tries its credential helpers.
    headers = {"WWW-Authenticate": 'Basic realm="GitHub"'} if status == 401 else {}
    return PlainTextResponse(message, status, headers=headers)


class GitEndpoint:
    """`/{owner}/{repo}.git/{service}`: info/refs, git-upload-pack and git-receive-pack."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    async def serve(self, request: Request) -> Response:
        token = self.registry.valid_token(token_of(request.headers.get("authorization", "")))
        if token is None:
            return refused(401, "Invalid username or token.\n")
        params = request.path_params
        repo = self.registry.accessible(token, f"{params['owner']}/{params['repo']}")
        service = params["service"]
        if repo is None or service not in SERVICES:
            return refused(404, "Repository not found.\n")
        pushing = service == "git-receive-pack"
        before = await asyncio.to_thread(branches, repo.path) if pushing else {}
        process = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=self._cgi_environment(request, repo, service),
        )
        # Starlette's StreamingResponse reads `receive` (for a disconnect) while it streams, so
        # the whole body goes in first; git's stateless RPC reads all of it before answering.
        await feed(request, process)
        status, headers = await read_head(process)
        body = self._body(process, repo, service, before)
        return StreamingResponse(body, status, headers=headers)

    def _cgi_environment(self, request: Request, repo: Repository, service: str) -> dict[str, str]:
        environment = {
            "PATH": os.environ["PATH"],
            # Neither the user's nor the system's git config reaches the served repositories.
            "HOME": str(self.registry.root),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_PROJECT_ROOT": str(self.registry.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REQUEST_METHOD": request.method,
            "PATH_INFO": f"/{repo.full_name}.git/{service}",
            "QUERY_STRING": request.url.query,
            # http-backend allows receive-pack only to an authenticated user.
            "REMOTE_USER": "x-access-token",
            "REMOTE_ADDR": request.client.host if request.client else "127.0.0.1",
        }
        for header, name in PASSED_HEADERS.items():
            if header in request.headers:
                environment[name] = request.headers[header]
        return environment

    async def _body(
        self,
        process: asyncio.subprocess.Process,
        repo: Repository,
        service: str,
        before: dict[str, str],
    ) -> AsyncIterator[bytes]:
        assert process.stdout is not None
        # A push's answer (its report of each ref) is kept until the push took effect, so a
        # held answer (`hold_answer("git-receive-pack", ...)`) comes after the refs moved.
        held: list[bytes] = []
        try:
            while chunk := await process.stdout.read(65536):
                if service == "git-receive-pack":
                    held.append(chunk)
                else:
                    yield chunk
            # The refs advertisement (info/refs) only precedes the fetch or push.
            if await process.wait() == 0 and service != "info/refs":
                after = await asyncio.to_thread(branches, repo.path)
                self.registry.record_git(repo.full_name, service, len(after.keys() - before.keys()))
            if held:
                await asyncio.sleep(self.registry.holds.pop(service, 0))
                for chunk in held:
                    yield chunk
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()


async def feed(request: Request, process: asyncio.subprocess.Process) -> None:
    """Stream the request body into the program's stdin."""
    assert process.stdin is not None
    try:
        async for chunk in request.stream():
            process.stdin.write(chunk)
            await process.stdin.drain()
    except (BrokenPipeError, ConnectionResetError):
        pass  # the program stopped reading; its output says why
    finally:
        process.stdin.close()


async def read_head(process: asyncio.subprocess.Process) -> tuple[int, dict[str, str]]:
    """The status and headers of a CGI response: `Name: value` lines up to a blank one."""
    assert process.stdout is not None
    status, headers = 200, {}
    while line := (await process.stdout.readline()).rstrip(b"\r\n"):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "status":
            status = int(value.split()[0])
        else:
            headers[name] = value.strip()
    return status, headers
