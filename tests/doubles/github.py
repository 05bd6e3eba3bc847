"""A local double of GitHub for one GitHub App, for exercising the real `githubkit` SDK and
git offline: the REST API under `/api/v3/` (as on GitHub Enterprise Server) and git's smart HTTP
at `/{owner}/{repo}.git`, over real bare repositories under `root`.

It checks what GitHub checks (the App's JWT, installation tokens and their expiry, which
repositories an installation has) and counts what it was asked in `counts`.

    with GitHubDouble(tmp_path, app_id, public_key_pem) as double:
        double.add_installation(7, "acme")
        double.add_repository("acme/shop", 7, files={"README.md": b"# shop\\n"})
        gh = GitHub(AppAuthStrategy(app_id, private_key_pem), base_url=double.api_url, ...)
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from tests.conftest import ServerThread
from tests.doubles.github_auth import AppJwt
from tests.doubles.github_git import GitEndpoint
from tests.doubles.github_pull_shapes import review_comment_json
from tests.doubles.github_pulls import PullEndpoints, comparison_of, placed
from tests.doubles.github_repos import branches
from tests.doubles.github_rest import AppEndpoints, Gate, RepoEndpoints, http_error
from tests.doubles.github_shapes import Shapes
from tests.doubles.github_state import Comment, Counts, Pull, Registry, Repository, ReviewComment

API_PREFIX = "/api/v3"


def rest_app(registry: Registry, shapes: Shapes, app_jwt: AppJwt) -> Starlette:
    app = AppEndpoints(registry, shapes)
    repos = RepoEndpoints(registry, shapes)
    pulls = PullEndpoints(registry, shapes)
    repo = "/repos/{owner}/{repo}"
    routes: list[BaseRoute] = [
        Route("/app/installations", app.installations, methods=["GET"]),
        Route("/app/installations/{installation_id:int}", app.installation, methods=["GET"]),
        Route(
            "/app/installations/{installation_id:int}/access_tokens",
            app.access_token,
            methods=["POST"],
        ),
        Route(f"{repo}/installation", app.repo_installation, methods=["GET"]),
        Route(repo, repos.get, methods=["GET"]),
        Route("/orgs/{org}/repos", repos.create_in_org, methods=["POST"]),
        Route(f"{repo}/pulls", pulls.list, methods=["GET"]),
        Route(f"{repo}/pulls", pulls.create, methods=["POST"]),
        Route(f"{repo}/pulls/{{number:int}}", pulls.get, methods=["GET"]),
        Route(f"{repo}/pulls/{{number:int}}", pulls.update, methods=["PATCH"]),
        Route(f"{repo}/pulls/{{number:int}}/comments", pulls.review_comments, methods=["GET"]),
        Route(f"{repo}/issues/{{number:int}}/comments", pulls.comments, methods=["GET"]),
        Route(f"{repo}/issues/{{number:int}}/comments", pulls.add_comment, methods=["POST"]),
    ]
    gate = Middleware(Gate, registry=registry, app_jwt=app_jwt, routes=routes)
    return Starlette(
        routes=routes, middleware=[gate], exception_handlers={HTTPException: http_error}
    )


class GitHubDouble:
    """GitHub's REST API and git over HTTP for the App `app_id`, whose JWTs are checked with
    `public_key_pem`. Use it as a context manager; installations and repositories are added by
    the test."""

    def __init__(
        self,
        root: Path,
        app_id: int,
        public_key_pem: str,
        token_lifetime: timedelta = timedelta(hours=1),
        app_slug: str = "cofounder",
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.app_id = app_id
        self.registry = Registry(root, token_lifetime)
        self._server = ServerThread(self)
        self._shapes = shapes = Shapes(self.api_url, self.git_url, app_id, app_slug)
        self._rest = rest_app(self.registry, shapes, AppJwt(app_id, public_key_pem))
        route = Route(
            "/{owner}/{repo}.git/{service:path}",
            GitEndpoint(self.registry).serve,
            methods=["GET", "POST"],
        )
        self._git = Starlette(routes=[route])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(f"{API_PREFIX}/"):
            await self._rest({**scope, "path": path.removeprefix(API_PREFIX)}, receive, send)
        else:
            await self._git(scope, receive, send)

    @property
    def api_url(self) -> str:
        """The REST API's base URL, for `GitHub(base_url=...)` (it ends with a slash)."""
        return f"{self._server.url}{API_PREFIX}/"

    @property
    def git_url(self) -> str:
        """The web root: repositories clone from `{git_url}/{owner}/{name}.git`."""
        return self._server.url

    @property
    def counts(self) -> Counts:
        return self.registry.counts

    def clone_url(self, full_name: str) -> str:
        return f"{self.git_url}/{full_name}.git"

    def add_installation(
        self,
        installation_id: int,
        account_login: str,
        repos: Sequence[str] = (),
        account_type: str = "Organization",
    ) -> None:
        """Install the App on an account, with empty repositories `repos` (each "name" or
        "owner/name")."""
        self.registry.add_installation(installation_id, account_login, account_type)
        for name in repos:
            full_name = name if "/" in name else f"{account_login}/{name}"
            self.add_repository(full_name, installation_id)

    def add_repository(
        self,
        full_name: str,
        installation_id: int,
        default_branch: str = "main",
        files: dict[str, bytes] | None = None,
    ) -> Repository:
        """A bare repository under the root, in the installation; with `files`, one commit of
        them on the default branch, otherwise empty."""
        return self.registry.add_repository(full_name, installation_id, default_branch, files)

    def hold_answer(self, route: str, seconds: float) -> None:
        """Hold the answer of the next request to `route` ("POST /repos/{owner}/{repo}/pulls",
        or "git-receive-pack" for a push) for `seconds` after it took effect: a caller that dies
        meanwhile never hears of it."""
        self.registry.holds[route] = seconds

    def repository(self, full_name: str) -> Repository:
        return self.registry.repositories[full_name]

    def pull(self, full_name: str, number: int) -> Pull:
        return self.repository(full_name).pulls[number]

    def pulls(self, full_name: str) -> list[Pull]:
        return list(self.repository(full_name).pulls.values())

    def merge_pull(self, full_name: str, number: int) -> str:
        """Merge the pull request as a person on GitHub would; the merge commit."""
        repo = self.repository(full_name)
        pull = repo.pulls[number]
        self.registry.merge_pull(repo, pull, comparison_of(repo, pull))
        assert pull.merge_commit_sha is not None
        return pull.merge_commit_sha

    def comments(self, full_name: str, number: int) -> list[Comment]:
        return [c for c in self.repository(full_name).comments if c.number == number]

    def add_review_comment(
        self,
        full_name: str,
        number: int,
        body: str,
        login: str = "alice",
        in_reply_to: int | None = None,
        path: str = "slugkit/__init__.py",
        line: int = 1,
        review_id: int | None = None,
        author_association: str = "COLLABORATOR",
    ) -> dict[str, Any]:
        """A person's comment on line `line` of `path` in pull request `number`'s diff, or a
        reply in the thread of comment `in_reply_to`; its JSON, as the API lists it and as the
        `comment` of a `pull_request_review_comment` webhook."""
        repo = self.repository(full_name)
        said = ReviewComment(
            0,
            number,
            body,
            login,
            path,
            line,
            in_reply_to=in_reply_to,
            review_id=review_id,
            author_association=author_association,
        )
        comment = self.registry.add_review_comment(repo, placed(repo, said))
        return review_comment_json(self._shapes, repo, comment)

    def branches(self, full_name: str) -> dict[str, str]:
        """The repository's branches, name to head commit, read from the bare repository."""
        return branches(self.repository(full_name).path)

    def __enter__(self) -> GitHubDouble:
        self._server.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.__exit__(*exc)
