"""The database memory store, on SQLite (FTS5) and PostgreSQL (tsvector) alike: the contract
every store keeps (tests/memory_contract.py), then what only a full-text index shows."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cofounder.db import Base, MemoryRow
from cofounder.memory import MemoryStore, NewMemory
from cofounder.memory.database import DatabaseMemory
from tests.memory_contract import ALICE, BOB, CHECKS, FACTS

Sessions = async_sessionmaker[AsyncSession]


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
async def test_keeps_the_contract(
    db: Sessions, check: Callable[[MemoryStore], Awaitable[None]]
) -> None:
    await check(DatabaseMemory(db))


def memory(key: str, text: str) -> NewMemory:
    return NewMemory(key=key, kind="decision", text=text, source="b1", build_id="b1")


async def test_ranks_the_memory_matching_more_words_first(db: Sessions) -> None:
    store = DatabaseMemory(db)
    one, all_four, two = await store.add(
        ALICE,
        [
            memory("one", "Deploy the API to staging before production"),
            memory("all", "The API answers JSON over HTTP, served by FastAPI"),
            memory("two", "The HTTP API has a health check"),
        ],
    )
    found = await store.search(ALICE, "FastAPI JSON HTTP API", limit=3)
    assert [m.id for m in found] == [all_four, two, one]
    scores = [m.score for m in found]
    assert all(s is not None for s in scores) and scores == sorted(scores, reverse=True)  # type: ignore[type-var]


async def test_finds_words_by_their_stem(db: Sessions) -> None:
    store = DatabaseMemory(db)
    [tested] = await store.add(ALICE, [memory("t", "Build b2's tests passed on the first run")])
    assert [m.id for m in await store.search(ALICE, "testing", limit=5)] == [tested]
    assert [m.id for m in await store.search(ALICE, "passing runs", limit=5)] == [tested]


async def test_a_crowded_neighbour_changes_nothing(db: Sessions) -> None:
    """10,000 memories of Alice's shop beside 10,000 of Bob's in the same words: each owner's
    search finds only their own, and the one memory that fits best still comes first."""
    store = DatabaseMemory(db)
    many = [memory(f"k{i}", f"Build {i} ran the slug tests with pytest") for i in range(10_000)]
    alice = await store.add(ALICE, many)
    bob = await store.add(BOB, [*many, memory("best", "pytest slug tests for unicode titles")])
    assert len(alice) == 10_000 and len(bob) == 10_001 and not set(alice) & set(bob)

    found = await store.search(ALICE, "unicode titles slug tests", limit=20)
    assert len(found) == 20 and {m.id for m in found} <= set(alice)
    assert (await store.search(BOB, "unicode titles slug tests", limit=1))[0].id == bob[-1]
    assert await store.search(ALICE, "unicode titles", limit=20) == []
    listed = await store.list(ALICE, limit=3, offset=9_997)
    assert [m.id for m in listed] == alice[2::-1]


async def test_a_removed_memory_leaves_no_text_behind(db: Sessions) -> None:
    store = DatabaseMemory(db)
    ids = await store.add(ALICE, FACTS)
    await store.delete(ALICE, ids[0])
    async with db() as session:
        row = await session.scalar(select(MemoryRow).where(MemoryRow.id == ids[0]))
        assert row is not None and row.text == "" and row.deleted_at is not None
        assert row.key == FACTS[0].key  # the tombstone that keeps the key from coming back
        assert await _indexed_words(session, row.seq) == 0


async def _indexed_words(session: AsyncSession, seq: int) -> int:
    """How many words the dialect's full-text index still holds for the row."""
    if session.get_bind().dialect.name == "postgresql":
        query = "SELECT length(text_search) FROM memories WHERE seq = :seq"
    else:  # FTS5's own view of its entries: one row per word and column of each document
        vocabulary = "fts5vocab(main, memories_fts, instance)"
        await session.execute(text(f"CREATE VIRTUAL TABLE temp.fts_words USING {vocabulary}"))
        query = "SELECT count(*) FROM temp.fts_words WHERE doc = :seq"
    return int(await session.scalar(text(query), {"seq": seq}) or 0)


async def test_the_migration_makes_the_table_the_model_describes(db: Sessions) -> None:
    async with db() as session:
        conn = await session.connection()
        diffs = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    # The full-text index is the migration's alone, by design: PostgreSQL's generated column,
    # SQLite's FTS5 table and the shadow tables FTS5 keeps its index in.
    mine = [d for d in diffs if "memories" in repr(d) and not _full_text(d)]
    assert mine == []


def _full_text(diff: tuple[object, ...]) -> bool:
    return "text_search" in repr(diff) or "memories_fts" in repr(diff)
