"""A local double of OpenAI's embeddings API (`POST /v1/embeddings`), for exercising the real
`openai` SDK offline (and Mem0's `openai` embedder, which calls it).

Its "model" is a hashed bag of words: lowercased, crudely stemmed words (stop words left out)
counted into `dims` buckets and normalized, so texts that share words are near and texts that
share none are orthogonal. It checks the bearer key, answers float or base64 vectors as the SDK
asks, and counts every request by route, so a test can assert nothing else was called.

    with EmbeddingsDouble() as double:
        client = openai.OpenAI(api_key=double.api_key, base_url=double.base_url)
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
import threading
from collections import Counter
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import ServerThread

API_KEY = "sk-test-embeddings-double"
DIMS = 256
EMBEDDINGS = "POST /v1/embeddings"
_WORD = re.compile(r"[^\W_]+")
_STOP = frozenset(
    ["a", "an", "and", "are", "as", "at", "be", "by", "do", "for", "from", "how", "in", "is"]
    + ["it", "its", "of", "on", "or", "the", "to", "was", "what", "which", "with"]
)
_SUFFIXES = ("ies", "ing", "es", "ed", "s")


def stem(word: str) -> str:
    """Strips one common English suffix: enough for "tests" and "test" to meet."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix) + 2:
            return word[: -len(suffix)]
    return word


def embed(text: str, dims: int = DIMS) -> list[float]:
    """The double's vector for `text`: unit length, the same on every call."""
    words = [stem(w) for w in _WORD.findall(text.lower()) if w not in _STOP]
    vector = [0.0] * dims
    for word in words or [text]:
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        vector[int.from_bytes(digest, "big") % dims] += 1.0
    norm = math.sqrt(sum(v * v for v in vector))
    return [v / norm for v in vector]


class EmbeddingsDouble:
    """OpenAI's embeddings endpoint for one API key; use it as a context manager."""

    def __init__(self, dims: int = DIMS, api_key: str = API_KEY) -> None:
        self.dims = dims
        self.api_key = api_key
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        route = Route("/{path:path}", self._serve, methods=["GET", "POST", "PUT", "DELETE"])
        self._server = ServerThread(Starlette(routes=[route]))

    @property
    def base_url(self) -> str:
        """For `OpenAI(base_url=...)` and Mem0's `openai_base_url`."""
        return f"{self._server.url}/v1"

    def __enter__(self) -> EmbeddingsDouble:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)

    async def _serve(self, request: Request) -> JSONResponse:
        route = f"{request.method} {request.url.path}"
        with self._lock:
            self.requests[route] += 1
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_api_key")
        if route != EMBEDDINGS:
            return _error(404, f"Unknown request URL: {route}.", "unknown_url")
        body = await request.json()
        texts = body.get("input")
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            return _error(400, "'input' must be a string or a list of strings.", None)
        if not isinstance(body.get("model"), str):
            return _error(400, "you must provide a model parameter", None)
        dims = body.get("dimensions") or self.dims
        base64_out = body.get("encoding_format") == "base64"
        data = [_item(i, embed(text, dims), base64_out) for i, text in enumerate(texts)]
        tokens = sum(len(_WORD.findall(text)) or 1 for text in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        answer = {"object": "list", "data": data, "model": body["model"], "usage": usage}
        return JSONResponse(answer)


def _item(index: int, vector: list[float], base64_out: bool) -> dict[str, Any]:
    # The SDK asks for base64 unless told otherwise: little-endian float32, as OpenAI sends.
    packed = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return {"object": "embedding", "index": index, "embedding": packed if base64_out else vector}


def _error(status: int, message: str, code: str | None) -> JSONResponse:
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    return JSONResponse({"error": error}, status_code=status)
