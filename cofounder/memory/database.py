"""Project memory in the app database, searched with the database's own full-text index: FTS5
on SQLite, a `tsvector` with a GIN index on PostgreSQL (migration 0015). No extra service."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from functools import reduce
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    column,
    func,
    literal_column,
    select,
    table,
    update,
)
from sqlalchemy.dialects.postgresql import TSQUERY, TSVECTOR
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from cofounder.db import MemoryRow, insert_for
from cofounder.db.memory import FTS_TABLE, SEARCH_COLUMN
from cofounder.db.models import as_utc, utcnow
from cofounder.memory.model import Memory, MemoryNotFound, NewMemory, Scope, search_words

# Items written per statement: 500 rows of 10 columns stay far below both databases' limit on
# bound parameters (32,766), and 500 keys read back in one IN list.
BATCH = 500


class DatabaseMemory:
    """The MemoryStore over the app database's `memories` table; every query names the scope
    and leaves out removed memories, in the same statement."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions

    async def add(self, scope: Scope, items: list[NewMemory]) -> list[str]:
        """Remember `items` once per key; the ids of those now kept, in the items' order."""
        kept: dict[str, str] = {}
        now = utcnow()  # one time for the batch: `seq` keeps their order
        async with self.sessions() as session:
            for start in range(0, len(items), BATCH):
                batch = items[start : start + BATCH]
                await session.execute(_insert(session), _rows(scope, batch, now))
                kept.update(await _live_ids(session, scope, [item.key for item in batch]))
            await session.commit()
        return [kept[item.key] for item in items if item.key in kept]

    async def search(self, scope: Scope, query: str, limit: int) -> list[Memory]:
        """The scope's memories sharing the most (stemmed) words with `query`, best first."""
        words = search_words(query)
        if not words or limit < 1:
            return []
        async with self.sessions() as session:
            if session.get_bind().dialect.name == "postgresql":
                statement = _postgres_search(scope, words, limit)
            else:
                statement = _sqlite_search(scope, words, limit)
            rows = (await session.execute(statement)).all()
        return [_memory(row, score=float(score)) for row, score in rows]

    async def list(self, scope: Scope, limit: int, offset: int = 0) -> list[Memory]:
        """The scope's kept memories, newest first (those added together: last added first)."""
        if limit < 1:
            return []
        statement = (
            select(MemoryRow)
            .where(_live(scope))
            .order_by(MemoryRow.created_at.desc(), MemoryRow.seq.desc())
            .limit(limit)
            .offset(max(offset, 0))
        )
        async with self.sessions() as session:
            rows = (await session.scalars(statement)).all()
        return [_memory(row) for row in rows]

    async def delete(self, scope: Scope, memory_id: str) -> None:
        """Remove a memory for good: its row stays as a tombstone that keeps its key from being
        added again, with its text (and so its full-text entry) cleared."""
        statement = (
            update(MemoryRow)
            .where(_live(scope), MemoryRow.id == memory_id)
            .values(deleted_at=utcnow(), text="")
        )
        async with self.sessions() as session:
            result = await session.execute(statement)
            await session.commit()
        if not result.rowcount:  # type: ignore[attr-defined]
            raise MemoryNotFound(memory_id)

    async def close(self) -> None:
        """Nothing of its own to release: the sessions' engine belongs to whoever made it."""


def _insert(session: AsyncSession) -> Any:
    # A key the scope has (kept or a tombstone) keeps its row: a retry adds nothing, and a
    # removed memory is not brought back.
    insert = insert_for(session)(MemoryRow)
    return insert.on_conflict_do_nothing(index_elements=["owner", "project", "key"])


def _rows(scope: Scope, items: Sequence[NewMemory], now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "id": uuid.uuid4().hex,
            "owner": scope.owner,
            "project": scope.project,
            "created_at": now,
            **item.model_dump(include={"key", "kind", "text", "source", "build_id"}),
        }
        for item in items
    ]


async def _live_ids(session: AsyncSession, scope: Scope, keys: list[str]) -> dict[str, str]:
    """The ids of the scope's kept memories under `keys`, by key; tombstones are left out."""
    statement = select(MemoryRow.key, MemoryRow.id).where(_live(scope), MemoryRow.key.in_(keys))
    return {key: memory_id for key, memory_id in (await session.execute(statement)).all()}


def _live(scope: Scope) -> ColumnElement[bool]:
    return and_(
        MemoryRow.owner == scope.owner,
        MemoryRow.project == scope.project,
        MemoryRow.deleted_at.is_(None),
    )


def _sqlite_search(scope: Scope, words: list[str], limit: int) -> Select[Any]:
    """FTS5 over the words alone: each is quoted, so none is read as FTS5 syntax (a word has
    only letters and digits, never a quote), and any one of them matches."""
    fts = table(FTS_TABLE, column("rowid"))
    match = " OR ".join(f'"{word}"' for word in words)
    # bm25 is lower for a closer match; Memory.score is higher for one.
    rank = func.bm25(literal_column(FTS_TABLE))
    return (
        select(MemoryRow, -rank)
        .join_from(MemoryRow, fts, fts.c.rowid == MemoryRow.seq)
        .where(literal_column(FTS_TABLE).op("MATCH")(match), _live(scope))
        .order_by(rank, MemoryRow.seq.desc())
        .limit(limit)
    )


def _postgres_search(scope: Scope, words: list[str], limit: int) -> Select[Any]:
    """The tsvector against an OR of each word's own `plainto_tsquery`: every word is a bound
    parameter, never tsquery syntax. A stop word's query is empty and drops out of the OR."""
    english: ColumnElement[Any] = literal_column("'english'::regconfig")
    queries: list[ColumnElement[Any]] = [
        func.plainto_tsquery(english, word, type_=TSQUERY) for word in words
    ]
    # A scalar subquery: PostgreSQL builds the tsquery once, not again for every row it ranks.
    query = select(reduce(_either, queries)).scalar_subquery()
    searched = literal_column(f"memories.{SEARCH_COLUMN}", TSVECTOR)
    rank = func.ts_rank_cd(searched, query)
    return (
        select(MemoryRow, rank)
        .where(searched.op("@@")(query), _live(scope))
        .order_by(rank.desc(), MemoryRow.seq.desc())
        .limit(limit)
    )


def _either(left: ColumnElement[Any], right: ColumnElement[Any]) -> ColumnElement[Any]:
    """tsquery's OR."""
    return left.op("||", return_type=TSQUERY)(right)


def _memory(row: MemoryRow, score: float | None = None) -> Memory:
    return Memory(
        id=row.id,
        kind=row.kind,  # type: ignore[arg-type]  # written from a MemoryKind
        text=row.text,
        source=row.source,
        build_id=row.build_id,
        created_at=as_utc(row.created_at),
        score=score,
    )
