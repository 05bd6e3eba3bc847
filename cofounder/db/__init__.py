"""Database layer: SQLAlchemy 2 models, engine and Alembic migrations."""

from cofounder.db.engine import insert_for, make_engine, make_sessionmaker
from cofounder.db.models import Base, Build, BuildEvent, LedgerEntry, Project, PullRequest

__all__ = [
    "Base",
    "Build",
    "BuildEvent",
    "LedgerEntry",
    "Project",
    "PullRequest",
    "insert_for",
    "make_engine",
    "make_sessionmaker",
]
