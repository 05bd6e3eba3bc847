"""Project memory: what the co-founder learned, kept per owner and project and recalled into
later builds' plans and review iterations.

Two stores behind one small interface: the database's full-text search (the default, no extra
service; `cofounder/memory/database.py`) and Mem0 (`cofounder/memory/mem0.py`) when configured.
Every call names its `Scope`: an owner's memories are never read, listed or removed through
another owner's, even where their projects share a name.
"""

from __future__ import annotations

from cofounder.memory.model import (
    KINDS,
    Memory,
    MemoryKind,
    MemoryNotFound,
    MemoryStore,
    NewMemory,
    Scope,
    search_words,
)

__all__ = [
    "KINDS",
    "Memory",
    "MemoryKind",
    "MemoryNotFound",
    "MemoryStore",
    "NewMemory",
    "Scope",
    "search_words",
]
