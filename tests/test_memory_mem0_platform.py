"""The Mem0 platform memory store through Mem0's real SDK (`AsyncMemoryClient`) against a
local double of the platform's HTTP API (tests/doubles/mem0_platform.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.errors import BadRequest, NotAuthorized, RateLimited, Unavailable
from cofounder.memory import MemoryNotFound, MemoryStore
from cofounder.memory.mem0_platform import APP_ID, REMOVED_APP_ID, Mem0PlatformMemory
from cofounder.memory.stores import open_memory
from cofounder.settings import Settings
from tests.doubles.mem0_platform import Mem0PlatformDouble
from tests.memory_contract import ALICE, BOB, CHECKS, FACTS

ADD = "POST /v3/memories/add/"
EVENT = "GET /v1/event/{id}/"

# Mem0 fixes its folder when first imported: every test module using it shares one.
pytestmark = pytest.mark.usefixtures("mem0_home")


@pytest.fixture
def double() -> Iterator[Mem0PlatformDouble]:
    # Every add stays queued for two polls of its event, as the platform's do for a while.
    with Mem0PlatformDouble(event_polls=3) as double:
        yield double


def platform(
    double: Mem0PlatformDouble, home: Path, key: str = "", **options: float
) -> Mem0PlatformMemory:
    return Mem0PlatformMemory(SecretStr(key or double.api_key), double.url, home=home, **options)


@pytest_asyncio.fixture
async def store(double: Mem0PlatformDouble, tmp_path: Path) -> AsyncIterator[Mem0PlatformMemory]:
    store = platform(double, tmp_path / "mem0")
    yield store
    await store.close()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
async def test_contract(
    check: Callable[[MemoryStore], Awaitable[None]],
    store: Mem0PlatformMemory,
    double: Mem0PlatformDouble,
) -> None:
    await check(store)
    assert double.requests["GET /v1/ping/"] == 1  # one client for the store's life
    # Every queued add was waited for: its event read until it finished.
    assert double.requests[EVENT] >= 3 * double.requests[ADD]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
@pytest.mark.parametrize("shape", ["answered-at-once", "event-without-ids"])
async def test_contract_with_other_add_answers(
    check: Callable[[MemoryStore], Awaitable[None]], shape: str, tmp_path: Path
) -> None:
    at_once = shape == "answered-at-once"
    with Mem0PlatformDouble(queued=not at_once, event_ids=at_once) as double:
        store = platform(double, tmp_path / "mem0")
        try:
            await check(store)
        finally:
            await store.close()
    assert double.requests[EVENT] == (0 if at_once else double.requests[ADD])


async def test_adds_wait_for_the_event_and_add_once(
    store: Mem0PlatformMemory, double: Mem0PlatformDouble
) -> None:
    ids = await store.add(ALICE, FACTS)
    assert (double.requests[ADD], double.requests[EVENT]) == (len(FACTS), 3 * len(FACTS))
    assert await store.add(ALICE, FACTS) == ids
    assert double.requests[ADD] == len(FACTS)
    kept = double.memories[ids[0]]
    # Both entity ids are kept, and owner and project again in the metadata.
    assert (kept["user_id"], kept["agent_id"], kept["app_id"]) == ("alice", "shop", APP_ID)
    assert kept["metadata"]["owner"] == "alice" and kept["metadata"]["key"] == FACTS[0].key


async def test_lists_page_through_the_platform(
    store: Mem0PlatformMemory, double: Mem0PlatformDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("cofounder.memory.mem0_platform.PAGE_SIZE", 3)
    ids = await store.add(ALICE, FACTS)
    before = double.requests["POST /v3/memories/"]
    assert [m.id for m in await store.list(ALICE, limit=10)] == list(reversed(ids))
    assert double.requests["POST /v3/memories/"] - before == 2  # 4 memories, 3 a page


async def test_a_removed_key_is_a_tombstone_on_the_platform(
    store: Mem0PlatformMemory, double: Mem0PlatformDouble, tmp_path: Path
) -> None:
    ids = await store.add(ALICE, FACTS[:2])
    await store.delete(ALICE, ids[0])
    assert ids[0] not in double.memories
    (tombstone,) = [m for m in double.memories.values() if m["app_id"] == REMOVED_APP_ID]
    # Only the key: nothing of the removed memory's text.
    assert FACTS[0].text not in str(tombstone) and tombstone["metadata"]["key"] == FACTS[0].key
    # Another worker (nothing shared but the platform) keeps it removed too.
    other = platform(double, tmp_path / "other")
    try:
        assert await other.add(ALICE, FACTS[:2]) == [ids[1]]
        assert await other.search(ALICE, f"removed {FACTS[0].key}", limit=5) == []
    finally:
        await other.close()


async def test_results_are_checked_against_the_scope(
    store: Mem0PlatformMemory, double: Mem0PlatformDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice_ids = await store.add(ALICE, FACTS[:2])
    bob_ids = await store.add(BOB, FACTS[2:])
    await store.delete(ALICE, alice_ids[1])
    # A platform whose filters hold nothing: every owner's memories (and tombstones) come back.
    monkeypatch.setattr("tests.doubles.mem0_platform.matches", lambda memory, filters: True)
    assert [m.id for m in await store.list(ALICE, limit=10)] == alice_ids[:1]
    found = await store.search(ALICE, "founder slug pytest removed", limit=10)
    assert {m.id for m in found} <= set(alice_ids[:1])
    # Bob's keys do not count as Alice's: she adds her own.
    assert set(await store.add(ALICE, FACTS[2:3])).isdisjoint(bob_ids)
    with pytest.raises(MemoryNotFound):
        await store.delete(ALICE, bob_ids[0])
    with pytest.raises(MemoryNotFound):
        await store.delete(ALICE, "not-a-uuid")


async def test_an_add_that_never_finishes_is_a_clear_error(
    double: Mem0PlatformDouble, tmp_path: Path
) -> None:
    double.event_polls = 10_000
    store = platform(double, tmp_path / "mem0", add_timeout=0.3)
    try:
        with pytest.raises(Unavailable, match=r"did not finish adding a memory within 0.3s"):
            await store.add(ALICE, FACTS[:1])
        # Finished later, the retried add finds it by its key rather than adding it again.
        double.finish_pending()
        (memory_id,) = double.memories
        assert await store.add(ALICE, FACTS[:1]) == [memory_id]
        assert double.requests[ADD] == 1
    finally:
        await store.close()


async def test_a_wrong_key_is_a_clear_error_without_the_key(
    double: Mem0PlatformDouble, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "m0-wrong-key-1234567890abcdef"
    store = platform(double, tmp_path / "mem0", key=wrong)
    with pytest.raises(NotAuthorized, match=r"refused MEM0_API_KEY \(HTTP 401\)") as refused:
        await store.search(ALICE, "pytest", limit=3)
    # Not in the message, nor in a chained exception a traceback would show, nor in a log.
    assert wrong not in str(refused.value) and double.api_key not in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__
    assert wrong not in caplog.text
    await store.close()


@pytest.mark.parametrize(
    ("route", "status", "kind"),
    [
        ("POST /v3/memories/", 400, BadRequest),
        ("POST /v3/memories/", 401, NotAuthorized),
        (ADD, 429, RateLimited),
        (EVENT, 503, Unavailable),  # the event poll: httpx's error, not the SDK's
    ],
)
async def test_vendor_errors_are_ours_without_the_key(
    store: Mem0PlatformMemory,
    double: Mem0PlatformDouble,
    route: str,
    status: int,
    kind: type[Exception],
    caplog: pytest.LogCaptureFixture,
) -> None:
    double.fail[route] = status
    with pytest.raises(kind, match=f"HTTP {status}") as failed:
        await store.add(ALICE, FACTS[:1])
    assert double.api_key not in str(failed.value) and double.api_key not in caplog.text
    # Retried, it goes through.
    assert len(await store.add(ALICE, FACTS[:1])) == 1


async def test_an_unreachable_platform_is_unavailable(tmp_path: Path) -> None:
    store = Mem0PlatformMemory(SecretStr("m0-key"), "http://127.0.0.1:9", home=tmp_path)
    with pytest.raises(Unavailable, match="unreachable"):
        await store.list(ALICE, limit=1)


async def test_open_memory_picks_the_platform_with_an_api_key(
    settings: Settings, double: Mem0PlatformDouble, sessions: async_sessionmaker[AsyncSession]
) -> None:
    configured = settings.model_copy(
        update={"mem0_api_key": SecretStr(double.api_key), "mem0_host": double.url}
    )
    store = open_memory(configured, sessions)
    assert isinstance(store, Mem0PlatformMemory)
    try:
        ids = await store.add(ALICE, FACTS[:1])
        assert [m.id for m in await store.list(ALICE, limit=5)] == ids
    finally:
        await store.close()
