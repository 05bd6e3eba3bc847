"""The Mem0 memory store through Mem0's real SDK offline: qdrant in local mode (a folder, no
server), Mem0's SQLite history, and its `openai` embedder pointed at a local embeddings double.
Memories are kept verbatim, so the LLM Mem0 is configured with is never called."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr

from cofounder.memory import MemoryNotFound, MemoryStore
from cofounder.memory.mem0 import Mem0Memory, load_mem0
from cofounder.settings import Settings
from tests.doubles.embeddings import EMBEDDINGS, EmbeddingsDouble
from tests.memory_contract import ALICE, BOB, CHECKS, FACTS

DIMS = 256
# Mem0 fixes its folder when first imported: every test module using it shares one.
pytestmark = pytest.mark.usefixtures("mem0_home")


@pytest.fixture
def embeddings() -> Iterator[EmbeddingsDouble]:
    with EmbeddingsDouble(dims=DIMS) as double:
        yield double


def mem0_config(folder: Path, double: EmbeddingsDouble) -> dict[str, Any]:
    """Mem0's open-source config, offline; every test gets its own folder (qdrant's local mode
    locks its path)."""
    openai = {"api_key": double.api_key, "openai_base_url": double.base_url}
    return {
        "vector_store": {
            "provider": "qdrant",
            "config": {
                "collection_name": "memories",
                "path": str(folder / "qdrant"),
                "embedding_model_dims": DIMS,
            },
        },
        "embedder": {
            "provider": "openai",
            "config": {"model": "text-embedding-3-small", "embedding_dims": DIMS, **openai},
        },
        # Never called (infer=False); were it, the double would count a request it refuses.
        "llm": {"provider": "openai", "config": {"model": "gpt-4.1-mini", **openai}},
        "history_db_path": str(folder / "history.db"),
    }


@pytest_asyncio.fixture
async def store(tmp_path: Path, embeddings: EmbeddingsDouble) -> AsyncIterator[Mem0Memory]:
    store = Mem0Memory.from_config(mem0_config(tmp_path / "mem0", embeddings))
    yield store
    await store.close()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
async def test_contract(
    check: Callable[[MemoryStore], Awaitable[None]],
    store: Mem0Memory,
    embeddings: EmbeddingsDouble,
) -> None:
    await check(store)
    # Only the embedder was asked: no LLM call, nothing else of OpenAI's.
    assert set(embeddings.requests) == {EMBEDDINGS}


async def test_adding_again_embeds_nothing(store: Mem0Memory, embeddings: EmbeddingsDouble) -> None:
    await store.add(ALICE, FACTS)
    assert embeddings.requests[EMBEDDINGS] == len(FACTS)
    await store.add(ALICE, FACTS)
    assert embeddings.requests[EMBEDDINGS] == len(FACTS)


async def test_results_are_checked_against_the_scope(store: Mem0Memory) -> None:
    alice_ids = await store.add(ALICE, FACTS[:2])
    bob_ids = await store.add(BOB, FACTS[2:])
    # A vector store whose filters do nothing: Mem0 now answers with every owner's memories.
    vectors: Any = store._memory.vector_store
    vectors._create_filter = lambda filters: None
    leaked = await store._memory.get_all(filters={"user_id": "alice"}, top_k=100)
    assert {m["id"] for m in leaked["results"]} == {*alice_ids, *bob_ids}

    assert {m.id for m in await store.list(ALICE, limit=10)} == set(alice_ids)
    assert {m.id for m in await store.search(ALICE, "founder slug pytest", limit=10)} <= set(
        alice_ids
    )
    # Bob's keys do not count as Alice's: she adds her own.
    assert set(await store.add(ALICE, FACTS[2:3])).isdisjoint(bob_ids)
    with pytest.raises(MemoryNotFound):
        await store.delete(ALICE, bob_ids[0])
    with pytest.raises(MemoryNotFound):
        await store.delete(ALICE, "not-a-uuid")


async def test_from_settings_reads_the_config_file(
    tmp_path: Path, embeddings: EmbeddingsDouble, mem0_home: Path
) -> None:
    config = mem0_config(tmp_path / "mem0", embeddings)
    del config["history_db_path"]  # defaults to the data dir
    path = tmp_path / "mem0.json"
    path.write_text(json.dumps(config))
    settings = Settings(data_dir=tmp_path / "data", mem0_config=path, _env_file=None)  # type: ignore[call-arg]

    store = Mem0Memory.from_settings(settings)
    try:
        ids = await store.add(ALICE, FACTS[:1])
        await store.delete(ALICE, ids[0])
        assert await store.add(ALICE, FACTS[:1]) == []
    finally:
        await store.close()
    mem0_dir = tmp_path / "data" / "mem0"
    assert {"history.db", "cofounder_tombstones.db"} <= {p.name for p in mem0_dir.iterdir()}
    # Mem0's telemetry is off and its own files are not in ~/.mem0.
    mem0 = load_mem0()
    assert mem0.memory.telemetry.MEM0_TELEMETRY is False
    assert mem0.memory.setup.mem0_dir == os.environ["MEM0_DIR"] == str(mem0_home)


def test_from_settings_needs_an_open_source_config(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="COFOUNDER_MEM0_CONFIG"):
        Mem0Memory.from_settings(settings)
    platform = Settings(data_dir=tmp_path, mem0_api_key=SecretStr("m0-key"), _env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="MEM0_API_KEY"):
        Mem0Memory.from_settings(platform)
