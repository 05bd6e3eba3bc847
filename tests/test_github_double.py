"""The GitHub double, driven through the real githubkit SDK and the git CLI.

These pin the double to what githubkit sends and parses (each body is read through githubkit's
own models) and to what git does over smart HTTP, so the tests of our GitHub publisher that
stand on it exercise the same code paths as against GitHub.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
from githubkit import AppAuthStrategy, GitHub, TokenAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestFailed
from githubkit_schemas.latest.models import (
    BasicError,
    IssueComment,
    PullRequestSimple,
    SimpleUser,
    ValidationError,
)

from tests.doubles.github import GitHubDouble
from tests.doubles.github_state import Repository
from tests.github_fixtures import GITHUB_APP_ID, AppKey, InstalledApp, new_app_key

REPO = "acme/shop"
FILES = {"README.md": b"# shop\n", "src/app.py": b"print('shop')\n"}


@pytest.fixture
def shop(github: InstalledApp) -> Repository:
    return github.double.add_repository(REPO, github.installation_id, files=FILES)


def as_app(github: InstalledApp, private_key_pem: str | None = None) -> GitHub[AppAuthStrategy]:
    auth = AppAuthStrategy(github.app_id, private_key_pem or github.private_key_pem)
    # githubkit caches JWTs and installation tokens process-wide by App id unless given a
    # cache of its own; each test has a double of its own, which knows none of the old ones.
    cache = MemCacheStrategy()
    return GitHub(
        auth, base_url=github.api_url, http_cache=False, auto_retry=False, cache_strategy=cache
    )


def with_token(github: InstalledApp, token: str) -> GitHub[TokenAuthStrategy]:
    auth = TokenAuthStrategy(token)
    return GitHub(auth, base_url=github.api_url, http_cache=False, auto_retry=False)


async def new_token(github: InstalledApp) -> str:
    async with as_app(github) as gh:
        issued = await gh.rest.apps.async_create_installation_access_token(github.installation_id)
    return issued.parsed_data.token


async def git(*args: str, cwd: Path | None = None, header: str | None = None) -> tuple[int, str]:
    """Run git, with `Authorization: {header}` on its HTTP requests; exit code and stderr."""
    config = ["-c", f"http.extraHeader=Authorization: {header}"] if header else []
    identity = ["-c", "user.name=Founder", "-c", "user.email=founder@example.com"]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "GIT_CONFIG_NOSYSTEM": "1"}
    process = await asyncio.create_subprocess_exec(
        "git", *config, *identity, *args, cwd=cwd, env=env, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    return process.returncode or 0, stderr.decode()


async def push_branch(
    github: InstalledApp, clone: Path, branch: str, header: str, data: bytes = b"a feature\n"
) -> None:
    """Clone the shop, commit a file on a new branch and push it, as the publisher does."""
    url = github.double.clone_url(REPO)
    assert (await git("clone", "-q", url, str(clone), header=header))[0] == 0
    (clone / "feature.txt").write_bytes(data)
    for step in (["checkout", "-qb", branch], ["add", "."], ["commit", "-qm", "feature"]):
        assert (await git(*step, cwd=clone))[0] == 0
    code, stderr = await git("push", "origin", branch, cwd=clone, header=header)
    assert code == 0, stderr


# githubkit's list answers read as "list?" to mypy; passed through an Iterable they type check.
def numbers(pulls: Iterable[PullRequestSimple]) -> list[int]:
    return [pull.number for pull in pulls]


def ids(comments: Iterable[IssueComment]) -> list[int]:
    return [comment.id for comment in comments]


def basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()


async def test_the_app_jwt_is_exchanged_for_an_installation_token(github: InstalledApp) -> None:
    async with as_app(github) as gh:
        response = await gh.rest.apps.async_create_installation_access_token(github.installation_id)

    issued = response.parsed_data  # githubkit's InstallationToken
    assert response.status_code == 201
    assert issued.token.startswith("ghs_") and len(issued.token) == 40
    expires_at = datetime.strptime(issued.expires_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert timedelta(minutes=59) < expires_at - datetime.now(UTC) <= timedelta(hours=1)
    assert github.double.counts.token_exchanges == 1


async def test_an_installation_client_exchanges_once_and_reads_the_repository(
    github: InstalledApp, shop: Repository
) -> None:
    async with as_app(github) as app:
        gh = app.with_auth(app.auth.as_installation(github.installation_id))
        first = (await gh.rest.repos.async_get("acme", "shop")).parsed_data  # FullRepository
        again = (await gh.rest.repos.async_get("acme", "shop")).parsed_data

    assert first == again
    assert (first.full_name, first.default_branch, first.private) == (REPO, "main", True)
    assert first.clone_url == github.double.clone_url(REPO) == f"{github.git_url}/{REPO}.git"
    assert first.html_url == f"{github.git_url}/{REPO}"
    assert github.double.counts.token_exchanges == 1
    assert github.double.counts.requests["GET /repos/{owner}/{repo}"] == 2
    assert list(github.double.branches(REPO)) == ["main"]


async def test_the_app_sees_its_installations(github: InstalledApp, shop: Repository) -> None:
    async with as_app(github) as gh:
        listed = (await gh.rest.apps.async_list_installations()).parsed_data  # [Installation]
        of_repo = (await gh.rest.apps.async_get_repo_installation("acme", "shop")).parsed_data

    assert [i.id for i in listed] == [of_repo.id] == [github.installation_id]
    assert of_repo.app_id == GITHUB_APP_ID
    assert isinstance(of_repo.account, SimpleUser) and of_repo.account.login == "acme"


async def test_a_jwt_signed_with_another_key_is_refused(github: InstalledApp) -> None:
    async with as_app(github, new_app_key().private_key_pem) as gh:
        with pytest.raises(RequestFailed) as refused:
            await gh.rest.apps.async_create_installation_access_token(github.installation_id)

    assert refused.value.response.status_code == 401
    assert BasicError.model_validate(refused.value.response.json()).documentation_url
    assert github.double.counts.token_exchanges == 0


def app_jwt(private_key_pem: str, issuer: object, lifetime: timedelta) -> str:
    """An App JWT made by hand: PyJWT's `encode` refuses the numeric `iss` other SDKs send."""
    issued = int(time.time()) - 30
    claims = {"iss": issuer, "iat": issued, "exp": issued + int(lifetime.total_seconds())}
    return jwt.api_jws.encode(json.dumps(claims).encode(), private_key_pem, algorithm="RS256")


@pytest.mark.parametrize(
    ("issuer", "lifetime", "status"),
    [
        (GITHUB_APP_ID, timedelta(minutes=10), 201),  # an int `iss` is fine
        (str(GITHUB_APP_ID), timedelta(minutes=11), 201),  # within the clock skew
        (str(GITHUB_APP_ID), timedelta(minutes=30), 401),
        ("1", timedelta(minutes=5), 401),
    ],
)
def test_app_jwt_claims_are_checked(
    github: InstalledApp, issuer: object, lifetime: timedelta, status: int
) -> None:
    url = f"{github.api_url}app/installations/{github.installation_id}/access_tokens"
    headers = {"Authorization": f"Bearer {app_jwt(github.private_key_pem, issuer, lifetime)}"}

    assert httpx.post(url, headers=headers, json={}).status_code == status


async def test_calls_without_a_valid_token_are_refused(
    github: InstalledApp, shop: Repository
) -> None:
    token = await new_token(github)
    jwt_header = f"Bearer {app_jwt(github.private_key_pem, GITHUB_APP_ID, timedelta(minutes=5))}"
    async with httpx.AsyncClient(base_url=github.api_url) as http:
        refused = [
            await http.get(f"repos/{REPO}"),
            await http.get(f"repos/{REPO}", headers={"Authorization": "token ghs_notatoken"}),
            await http.get(f"repos/{REPO}", headers={"Authorization": jwt_header}),
            await http.get("app/installations", headers={"Authorization": f"token {token}"}),
        ]
        bearer = await http.get(f"repos/{REPO}", headers={"Authorization": f"Bearer {token}"})
        unknown = await http.get("nothing/here", headers={"Authorization": f"token {token}"})

    assert [r.status_code for r in refused] == [401] * 4
    assert all(BasicError.model_validate(r.json()).message for r in refused)
    assert bearer.status_code == 200
    assert (unknown.status_code, unknown.json()["message"]) == (404, "Not Found")


async def test_an_expired_token_is_refused(tmp_path: Path, github_app_key: AppKey) -> None:
    lifetime = timedelta(milliseconds=100)
    public_key = github_app_key.public_key_pem
    with GitHubDouble(tmp_path / "gh", GITHUB_APP_ID, public_key, lifetime) as double:
        double.add_installation(1, "acme")
        double.add_repository(REPO, 1, files=FILES)
        github = InstalledApp(double, GITHUB_APP_ID, github_app_key.private_key_pem, 1, "acme")
        token = await new_token(github)
        await asyncio.sleep(0.2)

        async with with_token(github, token) as gh:
            with pytest.raises(RequestFailed) as refused:
                await gh.rest.repos.async_get("acme", "shop")
        code, stderr = await git("ls-remote", double.clone_url(REPO), header=f"token {token}")

    assert refused.value.response.status_code == 401
    assert token not in refused.value.response.text
    assert code != 0 and token not in stderr


async def test_a_repository_of_another_installation_is_not_found(
    github: InstalledApp, shop: Repository
) -> None:
    github.double.add_installation(2, "other", repos=["secret"])
    token = await new_token(github)

    async with with_token(github, token) as gh:
        with pytest.raises(RequestFailed) as refused:
            await gh.rest.repos.async_get("other", "secret")
    code, stderr = await git(
        "ls-remote", github.double.clone_url("other/secret"), header=basic(token)
    )

    response = refused.value.response
    assert response.status_code == 404
    assert token not in response.text and token not in str(response.headers)
    assert code != 0 and "not found" in stderr and token not in stderr


async def test_a_token_can_be_limited_to_some_repositories(
    github: InstalledApp, shop: Repository
) -> None:
    github.double.add_repository("acme/books", github.installation_id)
    async with as_app(github) as gh:
        issued = await gh.rest.apps.async_create_installation_access_token(
            github.installation_id, repositories=["books"]
        )
    assert issued.parsed_data.repository_selection == "selected"

    async with with_token(github, issued.parsed_data.token) as gh:
        assert (await gh.rest.repos.async_get("acme", "books")).parsed_data.name == "books"
        with pytest.raises(RequestFailed, match="404"):
            await gh.rest.repos.async_get("acme", "shop")


@pytest.mark.parametrize("scheme", ["token", "Bearer", "Basic"])
async def test_a_push_with_the_token_creates_one_branch(
    github: InstalledApp, shop: Repository, tmp_path: Path, scheme: str
) -> None:
    token = await new_token(github)
    header = basic(token) if scheme == "Basic" else f"{scheme} {token}"

    await push_branch(github, tmp_path / "clone", "build-1", header)

    counts = github.double.counts
    assert (counts.pushes, counts.branches_created[REPO]) == (1, 1)
    assert set(github.double.branches(REPO)) == {"main", "build-1"}
    assert counts.fetch_requests >= 1


async def test_a_push_of_many_megabytes_streams_through(
    github: InstalledApp, shop: Repository, tmp_path: Path
) -> None:
    token = await new_token(github)
    data = os.urandom(8 * 1024 * 1024)  # incompressible: the pack is as large

    await push_branch(github, tmp_path / "clone", "big", basic(token), data)

    sha = github.double.branches(REPO)["big"]
    assert subprocess.run(
        ["git", "--git-dir", str(shop.path), "cat-file", "-s", f"{sha}:feature.txt"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip() == str(len(data))


async def test_git_without_the_token_is_refused(
    github: InstalledApp, shop: Repository, tmp_path: Path
) -> None:
    token, url, clone = await new_token(github), github.double.clone_url(REPO), tmp_path / "clone"
    assert (await git("clone", "-q", url, str(clone), header=basic(token)))[0] == 0
    assert (await git("checkout", "-qb", "build-1", cwd=clone))[0] == 0

    pushed, _ = await git("push", "-q", "origin", "build-1", cwd=clone)
    cloned, _ = await git("clone", "-q", url, str(tmp_path / "again"))
    advertised = httpx.get(f"{url}/info/refs?service=git-receive-pack")

    assert pushed != 0 and cloned != 0
    assert advertised.status_code == 401
    assert advertised.headers["www-authenticate"] == 'Basic realm="GitHub"'
    assert list(github.double.branches(REPO)) == ["main"]
    assert github.double.counts.pushes == 0


async def opened_pull(
    github: InstalledApp, tmp_path: Path
) -> tuple[GitHub[TokenAuthStrategy], str]:
    """A client with a token, after a push of branch build-1 and a pull request for it."""
    token = await new_token(github)
    await push_branch(github, tmp_path / "clone", "build-1", basic(token))
    gh = with_token(github, token)
    await gh.rest.pulls.async_create(
        "acme", "shop", title="Add a feature", head="acme:build-1", base="main", body="Why."
    )
    return gh, github.double.branches(REPO)["build-1"]


async def test_a_pull_request_is_opened_found_and_closed(
    github: InstalledApp, shop: Repository, tmp_path: Path
) -> None:
    gh, head_sha = await opened_pull(github, tmp_path)
    async with gh:
        pull = (await gh.rest.pulls.async_get("acme", "shop", 1)).parsed_data  # PullRequest
        found = await gh.rest.pulls.async_list("acme", "shop", head="acme:build-1")
        other = await gh.rest.pulls.async_list("acme", "shop", head="acme:build-2")
        unfiltered = await gh.rest.pulls.async_list("acme", "shop", head="build-2")
        closed = (await gh.rest.pulls.async_update("acme", "shop", 1, state="closed")).parsed_data
        open_now = await gh.rest.pulls.async_list("acme", "shop")
        every = await gh.rest.pulls.async_list("acme", "shop", state="all")

    assert (pull.number, pull.state, pull.title, pull.body) == (1, "open", "Add a feature", "Why.")
    assert (pull.head.ref, pull.head.sha, pull.base.ref) == ("build-1", head_sha, "main")
    assert (pull.commits, pull.additions, pull.changed_files, pull.merged) == (1, 1, 1, False)
    assert pull.html_url == f"{github.git_url}/{REPO}/pull/1"
    assert numbers(found.parsed_data) == [1] and numbers(other.parsed_data) == []
    assert numbers(unfiltered.parsed_data) == [1]  # without "owner:", GitHub ignores `head`
    assert closed.state == "closed" and closed.closed_at is not None
    assert numbers(open_now.parsed_data) == [] and numbers(every.parsed_data) == [1]
    assert github.double.pull(REPO, 1).state == "closed"
    assert github.double.counts.pulls_created == 1


async def test_a_pull_request_for_a_missing_branch_or_an_open_duplicate_is_refused(
    github: InstalledApp, shop: Repository, tmp_path: Path
) -> None:
    gh, _ = await opened_pull(github, tmp_path)
    async with gh:
        with pytest.raises(RequestFailed) as missing:
            await gh.rest.pulls.async_create("acme", "shop", title="t", head="nope", base="main")
        with pytest.raises(RequestFailed) as duplicate:
            await gh.rest.pulls.async_create("acme", "shop", title="t", head="build-1", base="main")

    for refused in (missing, duplicate):
        assert refused.value.response.status_code == 422
        assert ValidationError.model_validate(refused.value.response.json()).errors
    problem = duplicate.value.response.json()["errors"][0]
    assert problem["message"] == "A pull request already exists for acme:build-1."
    assert github.double.counts.pulls_created == 1


async def test_comments_go_on_pull_requests_by_number(
    github: InstalledApp, shop: Repository, tmp_path: Path
) -> None:
    gh, _ = await opened_pull(github, tmp_path)
    async with gh:
        created = await gh.rest.issues.async_create_comment("acme", "shop", 1, body="Built.")
        made = created.parsed_data  # IssueComment
        listed = await gh.rest.issues.async_list_comments("acme", "shop", 1)
        with pytest.raises(RequestFailed, match="404"):
            await gh.rest.issues.async_create_comment("acme", "shop", 2, body="Nowhere.")

    assert made.body == "Built." and made.html_url.endswith(f"/pull/1#issuecomment-{made.id}")
    assert ids(listed.parsed_data) == [made.id]
    assert [c.body for c in github.double.comments(REPO, 1)] == ["Built."]
    assert github.double.counts.comments_created == 1
    assert github.double.counts.requests["POST /repos/{owner}/{repo}/issues/{number}/comments"] == 2


async def test_a_merged_pull_request_reads_as_merged(
    github: InstalledApp, shop: Repository, tmp_path: Path
) -> None:
    gh, head_sha = await opened_pull(github, tmp_path)
    merge_sha = github.double.merge_pull(REPO, 1)
    async with gh:
        response = await gh.rest.pulls.async_get("acme", "shop", 1)
    pull = response.parsed_data

    assert (pull.state, pull.merged) == ("closed", True)
    assert response.raw_response.json()["merge_commit_sha"] == merge_sha  # not in githubkit's model
    assert pull.merged_at is not None and (pull.head.sha, pull.commits) == (head_sha, 1)
    assert github.double.branches(REPO)["main"] == merge_sha


async def test_a_repository_is_created_in_the_installations_organisation(
    github: InstalledApp,
) -> None:
    async with as_app(github) as app:
        gh = app.with_auth(app.auth.as_installation(github.installation_id))
        made = await gh.rest.repos.async_create_in_org("acme", name="fresh", auto_init=True)
        with pytest.raises(RequestFailed) as taken:
            await gh.rest.repos.async_create_in_org("acme", name="fresh")
        with pytest.raises(RequestFailed) as elsewhere:
            await gh.rest.repos.async_create_in_org("other", name="fresh")

    assert made.status_code == 201 and made.parsed_data.full_name == "acme/fresh"  # FullRepository
    assert list(github.double.branches("acme/fresh")) == ["main"]
    assert (taken.value.response.status_code, elsewhere.value.response.status_code) == (422, 404)
    assert github.double.counts.repositories_created == 1
