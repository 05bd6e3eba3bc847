"""The JSON the GitHub double answers with, field for field what GitHub returns and what
githubkit's models (`FullRepository`, `PullRequest`, `IssueComment`, `Installation`,
`InstallationToken`, `BasicError`, `ValidationError`) require."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from starlette.responses import JSONResponse

from tests.doubles.github_state import Installation, Repository, Token

DOCS = "https://docs.github.com/rest"
PERMISSIONS = {"contents": "write", "issues": "write", "metadata": "read", "pull_requests": "write"}
BOT_ID = 41898282

# The URL templates of a repository object, after `{api}/repos/{owner}/{name}`.
REPO_LINKS = {
    "archive_url": "/{archive_format}{/ref}",
    "assignees_url": "/assignees{/user}",
    "blobs_url": "/git/blobs{/sha}",
    "branches_url": "/branches{/branch}",
    "collaborators_url": "/collaborators{/collaborator}",
    "comments_url": "/comments{/number}",
    "commits_url": "/commits{/sha}",
    "compare_url": "/compare/{base}...{head}",
    "contents_url": "/contents/{+path}",
    "contributors_url": "/contributors",
    "deployments_url": "/deployments",
    "downloads_url": "/downloads",
    "events_url": "/events",
    "forks_url": "/forks",
    "git_commits_url": "/git/commits{/sha}",
    "git_refs_url": "/git/refs{/sha}",
    "git_tags_url": "/git/tags{/sha}",
    "hooks_url": "/hooks",
    "issue_comment_url": "/issues/comments{/number}",
    "issue_events_url": "/issues/events{/number}",
    "issues_url": "/issues{/number}",
    "keys_url": "/keys{/key_id}",
    "labels_url": "/labels{/name}",
    "languages_url": "/languages",
    "merges_url": "/merges",
    "milestones_url": "/milestones{/number}",
    "notifications_url": "/notifications{?since,all,participating}",
    "pulls_url": "/pulls{/number}",
    "releases_url": "/releases{/id}",
    "stargazers_url": "/stargazers",
    "statuses_url": "/statuses/{sha}",
    "subscribers_url": "/subscribers",
    "subscription_url": "/subscription",
    "tags_url": "/tags",
    "teams_url": "/teams",
    "trees_url": "/git/trees{/sha}",
}


def timestamp(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment is not None else None


def error(status: int, message: str, errors: list[dict[str, str]] | None = None) -> JSONResponse:
    """GitHub's error body; a 422 carries the fields that failed validation."""
    body: dict[str, Any] = {"message": message, "documentation_url": DOCS, "status": str(status)}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status)


class Shapes:
    """Builds the objects, with URLs on the double: the API under `api`, pages and git under
    `web`, as on GitHub Enterprise Server."""

    def __init__(self, api: str, web: str, app_id: int, app_slug: str) -> None:
        self.api, self.web = api.rstrip("/"), web.rstrip("/")
        self.app_id, self.app_slug = app_id, app_slug
        self.host = urlsplit(web).netloc

    def user(self, login: str, user_id: int, kind: str) -> dict[str, Any]:
        url = f"{self.api}/users/{login}"
        return {
            "login": login,
            "id": user_id,
            "node_id": f"U_{user_id}",
            "avatar_url": f"{self.web}/avatars/u/{user_id}",
            "gravatar_id": "",
            "url": url,
            "html_url": f"{self.web}/{login}",
            "followers_url": f"{url}/followers",
            "following_url": f"{url}/following{{/other_user}}",
            "gists_url": f"{url}/gists{{/gist_id}}",
            "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{url}/subscriptions",
            "organizations_url": f"{url}/orgs",
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events{{/privacy}}",
            "received_events_url": f"{url}/received_events",
            "type": kind,
            "user_view_type": "public",
            "site_admin": False,
        }

    def bot(self) -> dict[str, Any]:
        return self.user(f"{self.app_slug}[bot]", BOT_ID, "Bot")

    def account(self, installation: Installation) -> dict[str, Any]:
        i = installation
        return self.user(i.account_login, i.account_id, i.account_type)

    def installation(self, installation: Installation) -> dict[str, Any]:
        i = installation
        settings = f"{self.web}/organizations/{i.account_login}/settings/installations"
        return {
            "id": i.installation_id,
            "account": self.account(i),
            "repository_selection": "all",
            "access_tokens_url": f"{self.api}/app/installations/{i.installation_id}/access_tokens",
            "repositories_url": f"{self.api}/installation/repositories",
            "html_url": f"{settings}/{i.installation_id}",
            "app_id": self.app_id,
            "app_slug": self.app_slug,
            "client_id": f"Iv1.{self.app_id:016x}",
            "target_id": i.account_id,
            "target_type": i.account_type,
            "permissions": PERMISSIONS,
            "events": ["pull_request", "push"],
            "created_at": timestamp(i.created_at),
            "updated_at": timestamp(i.created_at),
            "single_file_name": None,
            "has_multiple_single_files": False,
            "single_file_paths": [],
            "suspended_by": None,
            "suspended_at": None,
        }

    def token(self, token: Token) -> dict[str, Any]:
        return {
            "token": token.value,
            "expires_at": timestamp(token.expires_at),
            "permissions": PERMISSIONS,
            "repository_selection": "all" if token.repositories is None else "selected",
        }

    def repository(self, repo: Repository, owner: Installation) -> dict[str, Any]:
        url = f"{self.api}/repos/{repo.full_name}"
        open_pulls = sum(p.state == "open" for p in repo.pulls.values())
        return {
            "id": repo.repository_id,
            "node_id": f"R_{repo.repository_id}",
            "name": repo.name,
            "full_name": repo.full_name,
            "owner": self.account(owner),
            "private": repo.private,
            "visibility": "private" if repo.private else "public",
            "html_url": f"{self.web}/{repo.full_name}",
            "description": repo.description,
            "fork": False,
            "url": url,
            **{name: url + tail for name, tail in REPO_LINKS.items()},
            "git_url": f"git://{self.host}/{repo.full_name}.git",
            "ssh_url": f"git@{self.host}:{repo.full_name}.git",
            "clone_url": f"{self.web}/{repo.full_name}.git",
            "svn_url": f"{self.web}/{repo.full_name}",
            "mirror_url": None,
            "homepage": None,
            "language": None,
            "size": 0,
            "default_branch": repo.default_branch,
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "subscribers_count": 0,
            "network_count": 0,
            "open_issues_count": open_pulls,
            "open_issues": open_pulls,
            "has_issues": True,
            "has_projects": False,
            "has_wiki": False,
            "has_pages": False,
            "has_downloads": False,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "is_template": False,
            "topics": [],
            "license": None,
            "allow_forking": False,
            "web_commit_signoff_required": False,
            "pushed_at": timestamp(repo.created_at),
            "created_at": timestamp(repo.created_at),
            "updated_at": timestamp(repo.created_at),
        }
