"""The offline model: a local server speaking Anthropic's Messages API for the scripted co-founder.

Builds reach it through the real `anthropic` SDK (only the base URL changes). The role is read
from the request's tool names; answers are a pure function of the request, so retries and replays
get the same answer. `/_control/*` lets tests queue faults and read counters.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from cofounder.offline_model.faults import ERROR_TYPES, Fault, ServerState
from cofounder.offline_model.reply import MessagesRequest, respond

ROLE_BY_TOOL = {
    "submit_plan": "architect",
    "write_file": "coder",
    "submit_diagnosis": "debugger",
    "submit_review": "reviewer",
}


def create_app() -> FastAPI:
    """The offline model's ASGI app, with its own fault queue and counters."""
    app = FastAPI(title="cofounder offline model", docs_url=None, redoc_url=None)
    state = ServerState()

    @app.post("/v1/messages")
    async def messages(request: Request) -> Response:
        state.in_flight += 1
        try:
            return await answer(request)
        finally:
            state.in_flight -= 1

    async def answer(request: Request) -> Response:
        try:
            raw = await request.json()
        except ValueError:
            return error(400, "the request body is not valid JSON")
        role = _role(raw)
        state.count_request(role)
        if not _has_api_key(request):
            return error(401, "an API key is required (x-api-key or Authorization: Bearer)")
        fault = state.take_fault(role)
        if fault is not None and fault.status is not None:
            return error(fault.status, f"injected fault ({fault.status})", fault.retry_after)
        if fault is not None and fault.garbled is not None:
            state.garbled += 1
            return garbled(fault.garbled)
        try:
            body = MessagesRequest.model_validate(raw)
        except ValidationError as err:
            return error(400, f"invalid request: {err.errors()[0]['msg']}")
        if fault is not None and fault.delay:
            if await _client_left(request, fault.delay):
                return error(500, "client disconnected")
        message = respond(body, role, state, fault)
        state.count_served(role, message["id"])
        return JSONResponse(message, headers={"request-id": message["id"].replace("msg_", "req_")})

    @app.post("/_control/faults")
    async def add_faults(faults: list[Fault]) -> dict[str, int]:
        """Queue faults; each applies once, to the next request of its role, in order."""
        state.faults.extend(faults)
        return {"pending": len(state.faults)}

    @app.get("/_control/stats")
    async def stats() -> dict[str, Any]:
        return state.stats()

    @app.post("/_control/reset")
    async def reset() -> dict[str, bool]:
        state.reset()
        return {"reset": True}

    return app


def serve(host: str, port: int) -> None:
    """Run the offline model until interrupted (`cofounder offline-model`)."""
    import uvicorn

    uvicorn.run(create_app(), host=host, port=port, log_level="info")


def error(status: int, message: str, retry_after: float | None = None) -> JSONResponse:
    """An error in the Messages API's shape, with the matching status."""
    kind = ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else None
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return JSONResponse(body, status_code=status, headers=headers)


def garbled(kind: str) -> Response:
    """A 200 that is not a Messages API response (a proxy's error page, a changed schema)."""
    if kind == "not-json":
        return Response("<html><body>502 Bad Gateway</body></html>", media_type="text/html")
    body = {"id": "msg_garbled", "type": "message", "role": "assistant", "model": "unknown"}
    return JSONResponse({**body, "content": "no blocks here", "usage": {"input_tokens": "?"}})


async def _client_left(request: Request, delay: float) -> bool:
    """Sleep `delay` seconds; True if the client hung up meanwhile (that call was not served)."""
    deadline = asyncio.get_running_loop().time() + delay
    while asyncio.get_running_loop().time() < deadline:
        if await request.is_disconnected():
            return True
        await asyncio.sleep(0.05)
    return await request.is_disconnected()


def _has_api_key(request: Request) -> bool:
    # Like the real API: older SDKs send x-api-key, newer ones send the key as a bearer token.
    bearer = request.headers.get("authorization", "").removeprefix("Bearer").strip()
    return bool(request.headers.get("x-api-key", "").strip() or bearer)


def _role(raw: Any) -> str:
    tools = raw.get("tools") if isinstance(raw, dict) else None
    for tool in tools if isinstance(tools, list) else []:
        if isinstance(tool, dict) and tool.get("name") in ROLE_BY_TOOL:
            return ROLE_BY_TOOL[tool["name"]]
    return "chat"
