"""Each model call made at most once per activity execution and billed exactly once.

A call's key is derived from the activity's identity (workflow id, run id, activity id), the turn
and the exact request body, so it is stable across the activity's retries. The response is stored
once, as an artifact (the one the activity's result then names), and the journal keeps a small
pointer to it under the key, in the artifact store's folder or bucket so every worker sees it,
right after the call and before the ledger row: a retry after a crash, or after the database was
down when the row was due, reuses the answer instead of paying for it again, and the ledger
ignores the repeated key. With one call per activity (the agent loop's turns, the forced roles),
the pointer is all the journal holds; only builds from before the agent loop made several calls
in one activity (`turn` tells them apart).

A response that failed validation is marked rejected, so the retry asks again under a new key (a
new call, billed as such) instead of replaying the bad answer forever; after MAX_UNUSABLE_ANSWERS
unusable answers to one request the call gives up for good. A malformed response (not a Messages
API body) is recorded the same way, without a ledger row: it carries no usage to bill.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from anthropic.types import Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio import activity

from activities.errors import (
    CofounderError,
    InvalidModelOutput,
    MalformedResponse,
    OverBudget,
    UnusableModelOutput,
)
from activities.ledger import record_call
from cofounder.artifacts import ArtifactNotFound, ArtifactStore, Blobs
from cofounder.payloads import Usage
from cofounder.settings import ModelPrice

log = structlog.get_logger()

# Answers the model may get wrong for one request (invalid tool input, a malformed body) before
# the build fails: a few re-asks fix a slip, more only spend money on a model that cannot.
MAX_UNUSABLE_ANSWERS = 3


def call_key(turn: int, body: dict[str, Any]) -> str:
    """A key unique to one model call of one activity execution, stable across its retries."""
    info = activity.info()
    identity = [info.workflow_id or "", info.workflow_run_id or "", info.activity_id, turn]
    data = json.dumps([identity, body], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(data.encode()).hexdigest()


def usage_of(message: Message, price: ModelPrice) -> Usage:
    """Tokens and cost of one call; prices are USD per MTok, i.e. micro-dollars per token."""
    used = message.usage
    cache_write = used.cache_creation_input_tokens or 0
    cache_read = used.cache_read_input_tokens or 0
    cost = (
        used.input_tokens * price.input
        + used.output_tokens * price.output
        + cache_write * price.cache_write
        + cache_read * price.cache_read
    )
    return Usage(
        calls=1,
        input_tokens=used.input_tokens,
        output_tokens=used.output_tokens,
        cache_creation_input_tokens=cache_write,
        cache_read_input_tokens=cache_read,
        cost_micro_usd=round(cost),
    )


# Tokens are estimated from the request's size at 3 bytes each: more tokens than Claude's
# tokenizer makes of English or code, so the reservation errs on the safe side.
BYTES_PER_TOKEN = 3


def worst_case(body: dict[str, Any], price: ModelPrice) -> int:
    """The most one call with `body` can cost (micro-dollars): its whole input written to the
    cache at the dearest input price, and all of `max_tokens` as output."""
    sent = json.dumps([body.get("system"), body.get("tools"), body["messages"]], default=str)
    input_tokens = len(sent.encode()) // BYTES_PER_TOKEN + 1
    dearest = max(price.input, price.cache_write)
    return round(input_tokens * dearest + int(body["max_tokens"]) * price.output)


def check_allowance(body: dict[str, Any], price: ModelPrice, allowance: int | None) -> None:
    if allowance is None:
        return
    needed = worst_case(body, price)
    if needed > allowance:
        raise OverBudget(
            f"the next model call could cost ${needed / 1e6:.4f}; "
            f"the build has ${max(allowance, 0) / 1e6:.4f} left",
            needed_micro_usd=needed,
        )


class CallJournal:
    """One small JSON entry per call key, `{"response_ref": ..., "rejected": bool}`, kept beside
    the artifacts (`calls/<key>.json` in the folder or the S3 bucket): any worker finds what
    another was answered, and a database outage cannot lose an answer already paid for. Entries
    written before responses were stored as artifacts hold the response itself."""

    def __init__(self, blobs: Blobs) -> None:
        self.blobs = blobs

    @staticmethod
    def _key(key: str) -> str:
        if len(key) < 16 or not all(c in "0123456789abcdef-" for c in key):
            raise ValueError(f"not a call key: {key!r}")
        return f"calls/{key[:2]}/{key}.json"

    async def get(self, key: str) -> dict[str, Any] | None:
        try:
            entry: dict[str, Any] = json.loads(await self.blobs.read(self._key(key)))
        except ArtifactNotFound:
            return None
        return entry

    async def put(self, key: str, response_ref: str | None, *, rejected: bool = False) -> None:
        data = json.dumps({"response_ref": response_ref, "rejected": rejected}, sort_keys=True)
        await self.blobs.write(self._key(key), data.encode())  # whole or not at all

    async def reject(self, key: str) -> None:
        """Mark the answer at `key` unusable, so the next attempt asks the model again."""
        entry = await self.get(key)
        await self.put(key, entry.get("response_ref") if entry else None, rejected=True)

    async def usable_key(self, key: str) -> str:
        """The first key in `key`'s chain whose entry is missing or usable (not rejected)."""
        candidate, generation = key, 0
        while (entry := await self.get(candidate)) is not None and entry["rejected"]:
            generation += 1
            candidate = f"{key}-{generation}"
        return candidate


def answers_so_far(key: str) -> int:
    """How many answers the request behind `key` has had, counting the one at `key`."""
    _, _, generation = key.partition("-")
    return int(generation or 0) + 1


class JournaledCalls:
    """Makes model calls through the journal and records one ledger row per call."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def call(
        self,
        *,
        store: ArtifactStore,
        build_id: str,
        role: str,
        turn: int,
        body: dict[str, Any],
        price: ModelPrice,
        create: Callable[[], Awaitable[Message]],
        allowance_micro_usd: int | None = None,
        step: int | None = None,
    ) -> tuple[Message, str, Usage]:
        """The response for `body` (from the journal in the build owner's `store`, or from
        `create()`), its key and usage. A new call whose worst case passes the allowance is
        not made: OverBudget (an answer already paid for is always reused)."""
        journal = CallJournal(store.blobs)
        model = str(body["model"])
        key = await journal.usable_key(call_key(turn, body))
        logger = log.bind(build_id=build_id, role=role, model=model, turn=turn, call=key[:16])
        entry = await journal.get(key)
        if entry is None:
            check_allowance(body, price, allowance_micro_usd)
            try:
                message = await create()
            except MalformedResponse as err:
                logger.warning("malformed model response", reason=str(err))
                raise await self.reject(store, key, err) from None
            response_ref = await store.put_json(message.model_dump(mode="json"))
            await journal.put(key, response_ref)
            logger = logger.bind(response_ref=response_ref)
        else:
            message = await self._answer(store, entry)
            logger = logger.bind(journal="reused")
        usage = usage_of(message, price)
        await record_call(
            self.sessions,
            idempotency_key=key,
            build_id=build_id,
            role=role,
            model=model,
            usage=usage,
            step=step,
        )
        logger.info(
            "model call",
            stop_reason=message.stop_reason,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cache_read=usage.cache_read_input_tokens,
            cost_micro_usd=usage.cost_micro_usd,
        )
        return message, key, usage

    @staticmethod
    async def _answer(store: ArtifactStore, entry: dict[str, Any]) -> Message:
        if "response" in entry:  # an entry from before responses were artifacts
            return Message.model_validate(entry["response"])
        return Message.model_validate(await store.get_json(entry["response_ref"]))

    async def reject(
        self, store: ArtifactStore, key: str, problem: InvalidModelOutput
    ) -> CofounderError:
        """Mark the answer at `key` unusable; the error to raise: a retry asks again, until the
        request has had MAX_UNUSABLE_ANSWERS answers, then the build fails with `problem`."""
        await CallJournal(store.blobs).reject(key)
        answers = answers_so_far(key)
        if answers < MAX_UNUSABLE_ANSWERS:
            return problem
        return UnusableModelOutput(f"{problem} ({answers} unusable answers in a row)")
