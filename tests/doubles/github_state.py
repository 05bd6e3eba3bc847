"""The GitHub double's model: installations, tokens, repositories, pull requests, comments on
their conversations and review comments on their diffs.

Every change goes through `Registry` under one lock: the server thread changes it while the
tests read it and add repositories from theirs.
"""

from __future__ import annotations

import itertools
import secrets
import string
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.doubles.github_repos import Comparison, init_bare, merge

TOKEN_ALPHABET = string.ascii_letters + string.digits


def now() -> datetime:
    # GitHub's timestamps have whole seconds; comparisons with them stay exact.
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class Counts:
    """What the double was asked to do, for tests that assert "exactly one"."""

    token_exchanges: int = 0
    repositories_created: int = 0
    pulls_created: int = 0
    comments_created: int = 0
    # Requests to git-receive-pack: one per push.
    pushes: int = 0
    # Requests to git-upload-pack: protocol v2 makes two per clone or fetch (ls-refs, fetch).
    fetch_requests: int = 0
    # By repository full name: branches that a push made.
    branches_created: Counter[str] = field(default_factory=Counter)
    # By "METHOD /route/{param}", e.g. "POST /repos/{owner}/{repo}/pulls".
    requests: Counter[str] = field(default_factory=Counter)


@dataclass
class Installation:
    installation_id: int
    account_login: str
    account_id: int
    account_type: str
    created_at: datetime = field(default_factory=now)


@dataclass
class Token:
    """An installation access token. `repositories` None: all the installation's repositories."""

    value: str
    installation_id: int
    expires_at: datetime
    repositories: frozenset[str] | None


@dataclass
class Pull:
    """A pull request; `head` and `base` are branch names of its repository."""

    number: int
    title: str
    body: str | None
    head: str
    base: str
    head_sha: str
    pull_id: int = 0
    state: str = "open"
    created_at: datetime = field(default_factory=now)
    updated_at: datetime = field(default_factory=now)
    closed_at: datetime | None = None
    merged_at: datetime | None = None
    merge_commit_sha: str | None = None
    # What the pull request compared when it was merged; its branches move on afterwards.
    compared_at_merge: Comparison | None = None


@dataclass
class Comment:
    comment_id: int
    number: int
    body: str
    created_at: datetime = field(default_factory=now)


@dataclass
class ReviewComment:
    """A comment on a line of a pull request's diff. A reply answers its thread's first comment
    and sits where that one does (path, line, commit, diff hunk)."""

    comment_id: int
    number: int
    body: str
    login: str
    path: str
    line: int
    commit_id: str = ""
    diff_hunk: str = ""
    in_reply_to: int | None = None
    review_id: int | None = None
    author_association: str = "COLLABORATOR"
    user_id: int = 0
    created_at: datetime = field(default_factory=now)


@dataclass
class Repository:
    repository_id: int
    full_name: str
    installation_id: int
    default_branch: str
    path: Path
    description: str | None = None
    private: bool = True
    created_at: datetime = field(default_factory=now)
    pulls: dict[int, Pull] = field(default_factory=dict)
    comments: list[Comment] = field(default_factory=list)
    review_comments: list[ReviewComment] = field(default_factory=list)
    # Pull requests and issues share one sequence of numbers, as on GitHub.
    last_number: int = 0

    @property
    def owner(self) -> str:
        return self.full_name.split("/")[0]

    @property
    def name(self) -> str:
        return self.full_name.split("/")[1]


@dataclass
class Registry:
    root: Path
    token_lifetime: timedelta
    installations: dict[int, Installation] = field(default_factory=dict)
    repositories: dict[str, Repository] = field(default_factory=dict)
    counts: Counts = field(default_factory=Counts)
    # Seconds to hold the answer of the next request to a route, after it took effect.
    holds: dict[str, float] = field(default_factory=dict)
    # The people who commented, by login: one user id each, as on GitHub.
    user_ids: dict[str, int] = field(default_factory=dict)
    _tokens: dict[str, Token] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1000))
    _lock: threading.RLock = field(default_factory=threading.RLock)

    def add_installation(self, installation_id: int, login: str, account_type: str) -> None:
        with self._lock:
            account_id = next(self._ids)
            installation = Installation(installation_id, login, account_id, account_type)
            self.installations[installation_id] = installation

    def add_repository(
        self,
        full_name: str,
        installation_id: int,
        default_branch: str,
        files: dict[str, bytes] | None,
    ) -> Repository:
        """A new bare repository under the root, in the installation."""
        with self._lock:
            if installation_id not in self.installations:
                raise KeyError(f"no installation {installation_id}")
            if full_name in self.repositories:
                raise ValueError(f"{full_name} exists")
            path = self.root / f"{full_name}.git"
            init_bare(path, default_branch, files)
            repo = Repository(next(self._ids), full_name, installation_id, default_branch, path)
            self.repositories[full_name] = repo
            return repo

    def create_repository(
        self, full_name: str, installation: Installation, body: dict[str, Any]
    ) -> Repository:
        """A repository made through `POST /orgs/{org}/repos`, counted; public unless asked."""
        files = {"README.md": f"# {body['name']}\n".encode()} if body.get("auto_init") else None
        with self._lock:
            repo = self.add_repository(full_name, installation.installation_id, "main", files)
            repo.private = bool(body.get("private", False))
            repo.description = body.get("description")
            self.counts.repositories_created += 1
            return repo

    def issue_token(self, installation_id: int, names: list[str] | None) -> Token | None:
        """A fresh token of the installation, limited to `names` (repository names without the
        owner) when given; None if one of them is not the installation's."""
        with self._lock:
            installation = self.installations[installation_id]
            scope = None
            if names is not None:
                scope = frozenset(f"{installation.account_login}/{name}" for name in names)
                repos = [self.repositories.get(full) for full in scope]
                if any(r is None or r.installation_id != installation_id for r in repos):
                    return None
            value = "ghs_" + "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(36))
            # Exact, not whole seconds: a tiny lifetime in a test is as short as it says.
            expires_at = datetime.now(UTC) + self.token_lifetime
            token = Token(value, installation_id, expires_at, scope)
            self._tokens[value] = token
            self.counts.token_exchanges += 1
            return token

    def installation_of(self, repo: Repository) -> Installation:
        return self.installations[repo.installation_id]

    def valid_token(self, value: str | None) -> Token | None:
        """The token if it exists and has not expired."""
        token = self._tokens.get(value or "")
        if token is None or datetime.now(UTC) >= token.expires_at:
            return None
        return token

    def accessible(self, token: Token, full_name: str) -> Repository | None:
        """The repository if the token may use it."""
        repo = self.repositories.get(full_name)
        if repo is None or repo.installation_id != token.installation_id:
            return None
        if token.repositories is not None and full_name not in token.repositories:
            return None
        return repo

    def open_pull(self, repo: Repository, pull: Pull) -> Pull:
        with self._lock:
            repo.last_number += 1
            pull.number = repo.last_number
            pull.pull_id = next(self._ids)
            repo.pulls[pull.number] = pull
            self.counts.pulls_created += 1
            return pull

    def update_pull(self, pull: Pull, changes: dict[str, Any]) -> None:
        """`PATCH /pulls/{number}`: a new title, body or state (open or closed)."""
        with self._lock:
            pull.title = changes.get("title", pull.title)
            pull.body = changes.get("body", pull.body)
            state = changes.get("state", pull.state)
            if state != pull.state and pull.merged_at is None:
                pull.state = state
                pull.closed_at = now() if state == "closed" else None
            pull.updated_at = now()

    def merge_pull(self, repo: Repository, pull: Pull, comparison: Comparison) -> None:
        """Merge the pull request (`comparison` is what it shows now) with a merge commit on
        its base, as a person pressing "Merge" would."""
        with self._lock:
            message = f"Merge pull request #{pull.number} from {repo.owner}/{pull.head}"
            sha = merge(repo.path, pull.base, comparison.head_sha, message)
            pull.state, pull.compared_at_merge, pull.merge_commit_sha = "closed", comparison, sha
            pull.merged_at = pull.closed_at = pull.updated_at = now()

    def add_comment(self, repo: Repository, number: int, body: str) -> Comment:
        with self._lock:
            comment = Comment(next(self._ids), number, body)
            repo.comments.append(comment)
            self.counts.comments_created += 1
            return comment

    def add_review_comment(self, repo: Repository, comment: ReviewComment) -> ReviewComment:
        """A person's review comment, with its id, its author's and (unless it is part of one)
        a review of its own: GitHub makes one for a single comment."""
        with self._lock:
            comment.comment_id = next(self._ids)
            if comment.login not in self.user_ids:
                self.user_ids[comment.login] = next(self._ids)
            comment.user_id = self.user_ids[comment.login]
            if comment.review_id is None:
                comment.review_id = next(self._ids)
            repo.review_comments.append(comment)
            return comment

    def record_git(self, full_name: str, service: str, new_branches: int) -> None:
        """A finished upload-pack (fetch or clone) or receive-pack (push) of the repository."""
        with self._lock:
            if service == "git-receive-pack":
                self.counts.pushes += 1
                self.counts.branches_created[full_name] += new_branches
            else:
                self.counts.fetch_requests += 1

    def count(self, name: str) -> None:
        with self._lock:
            self.counts.requests[name] += 1
