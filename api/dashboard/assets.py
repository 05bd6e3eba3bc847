"""Where the dashboard's templates, its own static files and the pinned htmx live, and how a
page is rendered."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.templating import Jinja2Templates

HERE = Path(__file__).parent
STATIC = HERE / "static"
# Installed by `npm ci` from package-lock.json (scripts/dev and scripts/test run it), so the
# version is pinned there and nothing is fetched from a CDN: the dashboard works offline.
HTMX = HERE / "node_modules" / "htmx.org" / "dist" / "htmx.min.js"
INSTALL_COMMAND = "npm ci --prefix api/dashboard"
HTMX_MISSING = (
    f"the dashboard's htmx is not installed ({HTMX.relative_to(HERE.parent.parent)} is missing):"
    f" run `{INSTALL_COMMAND}` (scripts/dev and scripts/test run it)"
)
# htmx swaps 4xx answers too: they carry the API's own words for a refused form.
HTMX_CONFIG = json.dumps(
    {
        "responseHandling": [
            {"code": "204", "swap": False},
            {"code": "[2345]..", "swap": True, "error": False},
        ],
        "includeIndicatorStyles": False,
    }
)


def usd(amount: float | None) -> str:
    """Dollars as people read them: cents for whole amounts, tenths of a cent below a dollar."""
    if amount is None:
        return "—"
    return f"${amount:,.2f}" if abs(amount) >= 1 else f"${amount:.4f}"


def when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def diff_class(line: str) -> str:
    """The class of a unified diff's line: a file header, a hunk, an addition or a removal."""
    if line.startswith(("diff --git", "+++ ", "--- ", "index ")):
        return "file"
    if line.startswith("@@"):
        return "hunk"
    return {"+": "add", "-": "del"}.get(line[:1], "")


def web_link(url: str | None) -> bool:
    """Only http(s) addresses become links: a `javascript:` one must never be clickable."""
    return url is not None and urlsplit(url).scheme in ("http", "https")


templates = Jinja2Templates(directory=HERE / "templates")
templates.env.globals["htmx_config"] = HTMX_CONFIG
templates.env.filters.update(usd=usd, when=when, diff_class=diff_class, web_link=web_link)


def htmx_file() -> FileResponse | HTMLResponse:
    """The pinned htmx, or a 500 page that names the command installing it."""
    if not HTMX.is_file():
        return HTMLResponse(
            f"<!doctype html><title>Not installed</title><p>{HTMX_MISSING}</p>", 500
        )
    # Revalidated on each load (the ETag makes that a 304): `npm ci` may change the version.
    return FileResponse(HTMX, media_type="text/javascript", headers={"Cache-Control": "no-cache"})


def page(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> HTMLResponse:
    """A whole page; a 500 naming the install command when htmx is missing, since every page
    needs it."""
    if not HTMX.is_file():
        context = {"status_code": 500, "title": "Not installed", "details": [HTMX_MISSING]}
        template, status_code = "error.html", 500
    return fragment(request, template, context, status_code)


def fragment(
    request: Request,
    template: str,
    context: dict[str, Any],
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """A template rendered with autoescaping: what htmx swaps into a page, or a page."""
    return templates.TemplateResponse(
        request, template, context, status_code=status_code, headers=headers
    )


def is_htmx(request: Request) -> bool:
    """Whether htmx sent the request (it swaps a fragment) rather than a plain form post."""
    return request.headers.get("hx-request") == "true"
