"""What every memory store keeps to (cofounder.memory.MemoryStore), as checks each store's
tests run against it: tests/test_memory_database.py (SQLite and PostgreSQL) and
tests/test_memory_mem0.py (Mem0's SDK offline)."""

from __future__ import annotations

import pytest

from cofounder.memory import MemoryNotFound, MemoryStore, NewMemory, Scope

ALICE = Scope(owner="alice", project="shop")
ALICE_OTHER = Scope(owner="alice", project="blog")
# Bob's project has the same name as Alice's: only the owner tells them apart.
BOB = Scope(owner="bob", project="shop")

FACTS = [
    NewMemory(
        key="b1:decision:1",
        kind="decision",
        text="Use pytest for the test suite because the team knows it",
        source="b1",
        build_id="b1",
    ),
    NewMemory(
        key="b1:decision:2",
        kind="decision",
        text="Serve the HTTP API with FastAPI for its typed request models",
        source="b1",
        build_id="b1",
    ),
    NewMemory(
        key="b1:convention:1",
        kind="convention",
        text="No new dependencies without asking the founder first",
        source="b1",
        build_id="b1",
    ),
    NewMemory(
        key="b2:outcome",
        kind="outcome",
        text="Build b2 added a slug generator for product pages; its tests passed",
        source="b2",
        build_id="b2",
    ),
]


async def remembers_newest_first_once_per_key(store: MemoryStore) -> None:
    ids = await store.add(ALICE, FACTS)
    assert len(ids) == len(FACTS) and len(set(ids)) == len(FACTS)
    # Remembering again (a retried activity) adds nothing and answers the same ids.
    assert await store.add(ALICE, FACTS) == ids
    listed = await store.list(ALICE, limit=10)
    assert [m.id for m in listed] == list(reversed(ids))
    assert {m.text for m in listed} == {f.text for f in FACTS}
    first = listed[-1]
    assert (first.kind, first.source, first.build_id) == ("decision", "b1", "b1")
    assert first.score is None
    assert [m.id for m in await store.list(ALICE, limit=2, offset=1)] == [ids[2], ids[1]]


async def finds_the_relevant_memory_first(store: MemoryStore) -> None:
    await store.add(ALICE, FACTS)
    found = await store.search(ALICE, "which framework runs the tests? pytest", limit=2)
    assert found and found[0].text == FACTS[0].text
    assert len(found) <= 2 and all(m.score is not None for m in found)
    api = await store.search(ALICE, "FastAPI HTTP API", limit=1)
    assert [m.text for m in api] == [FACTS[1].text]


async def never_crosses_owners_or_projects(store: MemoryStore) -> None:
    alice_ids = await store.add(ALICE, FACTS[:2])
    bob_ids = await store.add(BOB, [FACTS[2]])
    # Same keys in another scope are other memories.
    assert set(await store.add(ALICE_OTHER, FACTS[:1])).isdisjoint(alice_ids)

    assert [m.id for m in await store.list(BOB, limit=10)] == bob_ids
    # A vector store finds its nearest whatever the query; they must still be Bob's own.
    assert {m.id for m in await store.search(BOB, "pytest test suite FastAPI", limit=5)} <= set(
        bob_ids
    )
    assert {m.id for m in await store.search(ALICE, "dependencies founder", limit=5)}.isdisjoint(
        bob_ids
    )
    with pytest.raises(MemoryNotFound):
        await store.delete(BOB, alice_ids[0])
    with pytest.raises(MemoryNotFound):
        await store.delete(ALICE_OTHER, alice_ids[0])
    assert len(await store.list(ALICE, limit=10)) == 2


async def forgets_for_good(store: MemoryStore) -> None:
    ids = await store.add(ALICE, FACTS)
    await store.delete(ALICE, ids[0])
    assert ids[0] not in {m.id for m in await store.list(ALICE, limit=10)}
    assert ids[0] not in {m.id for m in await store.search(ALICE, "pytest test suite", limit=10)}
    # Remembered again under its key (a late retry), it stays forgotten.
    assert await store.add(ALICE, FACTS[:2]) == [ids[1]]
    assert ids[0] not in {m.id for m in await store.list(ALICE, limit=10)}
    with pytest.raises(MemoryNotFound):
        await store.delete(ALICE, ids[0])


async def searches_nothing_gracefully(store: MemoryStore) -> None:
    assert await store.search(ALICE, "anything at all", limit=5) == []
    assert await store.list(ALICE, limit=5) == []
    ids = await store.add(ALICE, FACTS)
    # A query in a search engine's own syntax is only words; it breaks nothing.
    odd = await store.search(ALICE, '"); DROP TABLE memories; -- OR * NEAR( pytest', limit=5)
    assert {m.id for m in odd} <= set(ids)
    assert len(await store.list(ALICE, limit=10)) == len(FACTS)
    assert await store.search(ALICE, "  ?! ", limit=5) == []


CHECKS = [
    remembers_newest_first_once_per_key,
    finds_the_relevant_memory_first,
    never_crosses_owners_or_projects,
    forgets_for_good,
    searches_nothing_gracefully,
]
