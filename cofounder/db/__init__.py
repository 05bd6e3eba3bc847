"""Database layer: SQLAlchemy 2 models, engine and Alembic migrations."""

from cofounder.db.billing import BuildRequest, StripeEvent
from cofounder.db.engine import insert_for, make_engine, make_sessionmaker
from cofounder.db.github import GitHubInstallation, GitHubRepository, WebhookDelivery
from cofounder.db.iterations import ReviewIteration
from cofounder.db.memory import MemoryRow
from cofounder.db.models import (
    Base,
    Build,
    BuildEvent,
    BuildLogEntry,
    LedgerEntry,
    Project,
    PullRequest,
)
from cofounder.db.users import UserAccount

__all__ = [
    "Base",
    "Build",
    "BuildRequest",
    "BuildEvent",
    "BuildLogEntry",
    "GitHubInstallation",
    "GitHubRepository",
    "LedgerEntry",
    "MemoryRow",
    "Project",
    "PullRequest",
    "ReviewIteration",
    "StripeEvent",
    "UserAccount",
    "WebhookDelivery",
    "insert_for",
    "make_engine",
    "make_sessionmaker",
]
