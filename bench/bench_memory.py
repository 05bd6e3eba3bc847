"""Recall latency with a project's memory small and large: a search (as the recall activity
makes it, 8 results) with 100 memories in the project and with N (10,000), side by side for
each store, while another owner's project of the same name holds as many.

Stores: the database store on SQLite and on PostgreSQL (a local server of the bench's own, when
Debian's PostgreSQL is installed), and Mem0 through its SDK (qdrant in local mode, embeddings
from the local double the tests use). Memories are made-up decisions, outcomes, feedback and
conventions over a 3,000-word vocabulary; queries are goals drawn the same way.

    .venv/bin/python -m bench.bench_memory [--memories N] [--mem0-memories M] [--queries Q]
        [--stores sqlite,postgresql,mem0]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from bench.bench_events import quantile
from cofounder.memory import MemoryStore, NewMemory, Scope
from tests.doubles.embeddings import EmbeddingsDouble

SMALL = 100
LIMIT = 8  # what the recall activity asks for by default
OURS = Scope(owner="alice", project="shop")
THEIRS = Scope(owner="bob", project="shop")
KINDS = ("decision", "outcome", "feedback", "convention")


def vocabulary(rng: random.Random, size: int = 3_000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choices(letters, k=rng.randint(3, 9))) for _ in range(size)]


def memories(rng: random.Random, words: list[str], count: int, tag: str) -> list[NewMemory]:
    return [
        NewMemory(
            key=f"{tag}:{n}",
            kind=KINDS[n % len(KINDS)],  # type: ignore[arg-type]
            text=" ".join(rng.choices(words, k=rng.randint(12, 40))),
            source=f"b{n // 10:05}",
            build_id=f"b{n // 10:05}",
        )
        for n in range(count)
    ]


async def time_searches(store: MemoryStore, queries: list[str]) -> list[float]:
    for query in queries[:5]:  # warm: statements prepared, caches filled
        await store.search(OURS, query, LIMIT)
    seconds = []
    for query in queries:
        began = time.perf_counter()
        found = await store.search(OURS, query, LIMIT)
        seconds.append(time.perf_counter() - began)
        assert len(found) <= LIMIT
    return seconds


async def add_all(store: MemoryStore, scope: Scope, items: list[NewMemory]) -> float:
    """Memories per second, added in batches of 500 as a long project's builds would have."""
    began = time.perf_counter()
    for start in range(0, len(items), 500):
        await store.add(scope, items[start : start + 500])
    return len(items) / (time.perf_counter() - began)


async def measure(store: MemoryStore, total: int, queries: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    words = vocabulary(rng)
    ours, theirs = memories(rng, words, total, "a"), memories(rng, words, total, "b")
    rate = await add_all(store, OURS, ours[:SMALL])
    small = await time_searches(store, queries)
    rate = await add_all(store, THEIRS, theirs)
    rate = await add_all(store, OURS, ours[SMALL:])
    large = await time_searches(store, queries)
    p = {q: (quantile(small, q) * 1000, quantile(large, q) * 1000) for q in (0.5, 0.99)}
    return [
        f"  {SMALL:>6} memories: p50 {p[0.5][0]:6.2f} ms  p99 {p[0.99][0]:6.2f} ms",
        f"  {total:>6} memories: p50 {p[0.5][1]:6.2f} ms  p99 {p[0.99][1]:6.2f} ms",
        f"  ratio {total}/{SMALL}: p50 {p[0.5][1] / p[0.5][0]:.2f}x  "
        f"p99 {p[0.99][1] / p[0.99][0]:.2f}x   (adding: {rate:,.0f} memories/s)",
    ]


async def main(args: argparse.Namespace) -> None:
    from bench.memory_stores import STORES

    rng = random.Random(11)
    words = vocabulary(random.Random(args.seed))  # the memories' own words
    queries = [" ".join(rng.choices(words, k=rng.randint(5, 15))) for _ in range(args.queries)]
    print(f"recall: {args.queries} searches of {LIMIT} per side; another owner holds as many")
    with EmbeddingsDouble() as embeddings, tempfile.TemporaryDirectory() as tmp:
        for name in args.stores.split(","):
            async with STORES[name](Path(tmp) / name, embeddings) as store:
                if store is None:
                    print(f"{name}: not available here")
                    continue
                total = args.mem0_memories if name == "mem0" else args.memories
                print(f"{name}:")
                for line in await measure(store, total, queries, args.seed):
                    print(line, flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memories", type=int, default=10_000, help="memories in the project")
    parser.add_argument("--queries", type=int, default=300, help="searches timed per side")
    # Mem0 here runs qdrant's local mode, a brute-force scan in Python meant for tests: it adds
    # about 25 memories a second, so its project is smaller unless asked.
    parser.add_argument("--mem0-memories", type=int, default=2_000)
    parser.add_argument("--stores", default="sqlite,postgresql,mem0")
    parser.add_argument("--seed", type=int, default=5)
    asyncio.run(main(parser.parse_args()))
