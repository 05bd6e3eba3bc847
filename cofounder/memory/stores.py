"""Which store keeps project memory here: Mem0 when configured, the database otherwise."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cofounder.memory.model import MemoryStore

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

    from cofounder.settings import Settings


def open_memory(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> MemoryStore:
    """Mem0 (its platform with MEM0_API_KEY, or an open-source config file) when set up; the
    app database's full-text search, which needs no other service, otherwise."""
    if settings.mem0_api_key is not None:
        from cofounder.memory.mem0_platform import Mem0PlatformMemory  # the SDK when used

        return Mem0PlatformMemory.from_settings(settings)
    if settings.mem0_config is not None:
        from cofounder.memory.mem0 import Mem0Memory  # the SDK is imported only when used

        return Mem0Memory.from_settings(settings)
    from cofounder.memory.database import DatabaseMemory

    return DatabaseMemory(sessions)
