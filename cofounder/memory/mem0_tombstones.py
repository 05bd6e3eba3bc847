"""The keys a founder removed from a Mem0-backed project memory.

Mem0 deletes for good and keeps nothing of a memory's metadata, so without these a late retry
of the activity that remembered a key would bring a removed memory back. A small SQLite file
(only scopes and keys, never a memory's text) beside Mem0's own history database.
"""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

from cofounder.memory.model import Scope

_SCHEMA = """CREATE TABLE IF NOT EXISTS removed_keys (
    owner TEXT NOT NULL, project TEXT NOT NULL, key TEXT NOT NULL,
    PRIMARY KEY (owner, project, key))"""


class Tombstones:
    """Removed keys per scope, in a SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def add(self, scope: Scope, key: str) -> None:
        """Remember that `key` was removed from the scope."""
        sql = "INSERT OR IGNORE INTO removed_keys VALUES (?, ?, ?)"
        await asyncio.to_thread(self._run, sql, (scope.owner, scope.project, key))

    async def removed(self, scope: Scope, keys: list[str]) -> set[str]:
        """Those of `keys` removed from the scope."""
        if not keys:
            return set()
        marks = ", ".join("?" * len(keys))
        sql = f"SELECT key FROM removed_keys WHERE owner = ? AND project = ? AND key IN ({marks})"
        rows = await asyncio.to_thread(self._run, sql, (scope.owner, scope.project, *keys))
        return {row[0] for row in rows}

    def _run(self, sql: str, params: tuple[str, ...]) -> list[tuple[str, ...]]:
        # A connection per call: calls come from any of asyncio's worker threads.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            db.execute(_SCHEMA)
            return db.execute(sql, params).fetchall()
