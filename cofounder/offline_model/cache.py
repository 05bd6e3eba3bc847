"""Prompt caching as the Messages API reports it: a request is tools, then system, then the
messages' blocks, in that order; a block with `cache_control` ends a cacheable prefix. The
longest prefix written before (at any block, up to 20 blocks before a breakpoint, as the API
looks back) is read from the cache, the rest up to the last breakpoint is written to it, and
what follows is plain input. Tokens are estimated at 4 characters each."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

# How many blocks before a breakpoint the API looks for an earlier cached prefix.
LOOKBACK = 20


def segments(body: Any) -> list[tuple[str, bool]]:
    """The request's blocks in cache order, as (text, ends a cacheable prefix)."""
    blocks: list[Any] = list(body.tools)
    system = body.system
    blocks += system if isinstance(system, list) else ([system] if system else [])
    for message in body.messages:
        content = message.get("content")
        # A string is one text block, as the API reads it: cached alike either way.
        parts = content if isinstance(content, list) else [{"type": "text", "text": content}]
        blocks += [{"role": message.get("role"), "block": part} for part in parts]
    found = []
    for block in blocks:
        marked = _marked(block)
        found.append((json.dumps(_unmarked(block), sort_keys=True), marked))
    return found


def _marked(block: Any) -> bool:
    inner = block.get("block", block) if isinstance(block, dict) else block
    return isinstance(inner, dict) and "cache_control" in inner


def _unmarked(block: Any) -> Any:
    if isinstance(block, dict):
        return {k: _unmarked(v) for k, v in block.items() if k != "cache_control"}
    return block


def tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def usage(body: Any, cached: set[str]) -> dict[str, int]:
    """input_tokens, cache_creation_input_tokens and cache_read_input_tokens of `body`; the
    prefixes it writes are added to `cached`."""
    parts = segments(body)
    breakpoints = [i for i, (_, marked) in enumerate(parts) if marked]
    sha = hashlib.sha256(body.model.encode())
    total, read, written, keys = 0, 0, 0, []
    for index, (text, marked) in enumerate(parts):
        sha.update(text.encode() + b"\0")
        total += tokens(text)
        key = sha.copy().hexdigest()
        if key in cached and any(0 <= b - index <= LOOKBACK for b in breakpoints):
            read = total
        if marked:
            keys.append(key)
            written = total
    cached.update(keys)
    return {
        "input_tokens": max(1, total - written),
        "cache_creation_input_tokens": max(0, written - read),
        "cache_read_input_tokens": read,
    }
