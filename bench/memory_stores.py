"""The memory stores bench_memory measures, each opened fresh in a folder of its own and
closed after; None where this machine cannot run one (no PostgreSQL installed)."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

from cofounder.db import make_engine, make_sessionmaker
from cofounder.db.migrate import upgrade
from cofounder.memory import MemoryStore
from cofounder.memory.database import DatabaseMemory
from tests.conftest import free_port
from tests.doubles.embeddings import EmbeddingsDouble
from tests.postgres import LocalPostgres

Opener = Callable[[Path, EmbeddingsDouble], AbstractAsyncContextManager[MemoryStore | None]]


@asynccontextmanager
async def database_store(url: str) -> AsyncIterator[MemoryStore]:
    await asyncio.to_thread(upgrade, url)  # Alembic runs its own event loop
    engine = make_engine(url)
    try:
        yield DatabaseMemory(make_sessionmaker(engine))
    finally:
        await engine.dispose()


@asynccontextmanager
async def sqlite(folder: Path, _: EmbeddingsDouble) -> AsyncIterator[MemoryStore | None]:
    folder.mkdir(parents=True)
    async with database_store(f"sqlite+aiosqlite:///{folder}/app.db") as store:
        yield store


@asynccontextmanager
async def postgresql(folder: Path, _: EmbeddingsDouble) -> AsyncIterator[MemoryStore | None]:
    if not LocalPostgres.available():
        yield None
        return
    # Under /tmp itself: the postgres user cannot enter root's private temp folders.
    server = LocalPostgres(Path("/tmp") / f"bench-memory-pg-{free_port()}", free_port()).init()
    server.start()
    try:
        async with database_store(server.url) as store:
            yield store
    finally:
        server.stop()
        shutil.rmtree(server.root, ignore_errors=True)


@asynccontextmanager
async def mem0(folder: Path, embeddings: EmbeddingsDouble) -> AsyncIterator[MemoryStore | None]:
    from cofounder.memory.mem0 import Mem0Memory

    openai = {"api_key": embeddings.api_key, "openai_base_url": embeddings.base_url}
    dims = embeddings.dims
    config = {
        "vector_store": {
            "provider": "qdrant",
            "config": {
                "collection_name": "memories",
                "path": str(folder / "qdrant"),
                "embedding_model_dims": dims,
            },
        },
        "embedder": {"provider": "openai", "config": {"embedding_dims": dims, **openai}},
        "llm": {"provider": "openai", "config": {"model": "unused", **openai}},
        "history_db_path": str(folder / "history.db"),
    }
    store = await asyncio.to_thread(Mem0Memory.from_config, config, folder / "home")
    try:
        yield store
    finally:
        await store.close()


STORES: dict[str, Opener] = {"sqlite": sqlite, "postgresql": postgresql, "mem0": mem0}
