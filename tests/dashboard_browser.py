"""What the dashboard's browser tests stand on: Debian's Chromium driven by Playwright (never a
browser Playwright downloads), a proxy that can drop every connection to the API at once, and
screenshots kept for people to look at."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, Page, Playwright, expect

from tests.test_events import parse

CHROMIUM = Path("/usr/bin/chromium")
# Headless in a container without a GPU, talking to nothing but the test's own server.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "dashboard"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
BUILD_SECONDS = 150  # a demo build's first pass, on a busy machine
KNOWN = {"phase", "turn", "tool_call", "command", "output", "cost", "pull_request", "iteration"}


def require_chromium() -> None:
    """Skip without Chromium locally (saying how to get it); in CI its absence is a failure."""
    if CHROMIUM.exists():
        return
    reason = f"{CHROMIUM} is missing: scripts/test installs it (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


async def launch(playwright: Playwright) -> Browser:
    return await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


async def screenshots(page: Page, name: str) -> list[Path]:
    """The whole page at a phone's width and at a desktop's, as PNGs in ARTIFACTS."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    taken = []
    for label, size in (("390", PHONE), ("desktop", DESKTOP)):
        await page.set_viewport_size(size)
        path = ARTIFACTS / f"{name}-{label}.png"
        await page.screenshot(path=str(path), full_page=True)
        taken.append(path)
    if before is not None:
        await page.set_viewport_size(before)
    return taken


class DroppingProxy:
    """A TCP proxy in front of the API that can cut every open connection at once, as a
    restarted server or a broken network would; it keeps each request's head to show what
    the browser sent when it came back."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.heads: list[bytes] = []
        self._open: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> DroppingProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.drop()
        await self._server.wait_closed()

    def drop(self) -> int:
        """Abort every open connection, both ways; how many there were."""
        dropped = len(self._open)
        for writer in list(self._open):
            writer.transport.abort()
        self._open.clear()
        return dropped // 2

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._open |= {writer, up_writer}
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, record=True), self._pipe(up_reader, writer)
            )
        finally:
            for end in (writer, up_writer):
                self._open.discard(end)
                end.transport.abort()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, record: bool = False
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while chunk := await reader.read(65536):
                if record and chunk[:5] in (b"GET /", b"POST ", b"HEAD "):
                    self.heads.append(chunk.split(b"\r\n\r\n", 1)[0])
                writer.write(chunk)
                await writer.drain()
        writer.transport.abort()  # one side ended: so does the other


@dataclass
class Stack:
    url: str  # the API through the proxy, as the browser sees it
    direct: str  # the API itself
    proxy: DroppingProxy


async def start_from_form(
    page: Page, stack: Stack, goal: str, approval: bool = False, budget: str | None = None
) -> str:
    """Start a build in project demo from the new-build form; its id, on its page."""
    await page.goto(f"{stack.url}/app/new?project=demo")
    await page.get_by_label("Goal").fill(goal)
    if approval:
        await page.get_by_label("Wait for my approval of the plan").check()
    if budget is not None:
        await page.get_by_label("Budget (US$)").fill(budget)
    await page.get_by_role("button", name="Start the build").click()
    await page.wait_for_url(re.compile(r"/app/builds/[0-9a-f]+$"))
    return page.url.rsplit("/", 1)[1]


async def phase(page: Page, status: str, seconds: float = BUILD_SECONDS) -> None:
    await expect(page.locator("#phase")).to_have_text(status, timeout=seconds * 1000)


async def api(stack: Stack, method: str, path: str, **kwargs: object) -> httpx.Response:
    async with httpx.AsyncClient(base_url=stack.direct, timeout=60) as http:
        return await http.request(method, path, **kwargs)  # type: ignore[arg-type]


async def streamed(stack: Stack, build_id: str) -> dict[int, str]:
    """The build's events the dashboard renders, from the whole stream so far: id -> kind."""
    answer = await api(stack, "GET", f"/api/builds/{build_id}/events", params={"until": "settled"})
    return {int(e["id"]): e["event"] for e in parse(answer.text) if e["event"] in KNOWN}


async def shown(page: Page) -> list[tuple[int, str]]:
    """The events on the page, as (id, kind), in document order."""
    script = "els => els.map((el) => [Number(el.dataset.eventId), el.dataset.kind])"
    pairs: list[list[int | str]] = await page.eval_on_selector_all("[data-event-id]", script)
    return [(int(i), str(kind)) for i, kind in pairs]
