"""The GitHub App adapter through githubkit and git against the local GitHub double: tokens
cached per installation, a build's branch pushed and its pull request opened once, no token in
any error or log line."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from activities.errors import BadRequest, NotAuthorized
from activities.github.app import REFRESH_BEFORE, GitHubApp
from activities.github.publish import Change, publish_on_github
from cofounder.settings import Settings
from tests.github_fixtures import InstalledApp, new_app_key
from worker import github_app

BASE_FILES = {"README.md": b"# shop\n", "shop/__init__.py": b"VERSION = 1\n"}


def app_of(github: InstalledApp, now: datetime | None = None) -> GitHubApp:
    clock = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
    return GitHubApp(github.app_id, SecretStr(github.private_key_pem), github.api_url, now=clock)


def change(branch: str = "cofounder/b1", base: str | None = None) -> Change:
    return Change(
        branch=branch,
        files={"README.md": b"# shop\n\nNow with slugs.\n", "shop/slug.py": b"def slug(): ...\n"},
        message="Add slugs\n\nBuild b1",
        date="2026-11-25T10:00:00+00:00",
        base=base,
        title="Add slugs",
        body="## Plan\n\n1. Add slugs",
    )


async def test_a_token_is_exchanged_once_and_renewed_before_it_expires(
    github: InstalledApp,
) -> None:
    app = app_of(github)
    first, again = await asyncio.gather(*(app.token(github.installation_id) for _ in range(2)))
    assert first == again and first.startswith("ghs_")
    assert github.double.counts.token_exchanges == 1  # two callers at once, one exchange

    issued = app._tokens[github.installation_id].expires_at
    later = app_of(github, now=issued - REFRESH_BEFORE + timedelta(seconds=1))
    later._tokens = app._tokens  # the same cache, read later on
    renewed = await later.token(github.installation_id)
    assert renewed != first and github.double.counts.token_exchanges == 2


async def test_a_build_is_pushed_and_its_pull_request_opened_once(github: InstalledApp) -> None:
    repository = f"{github.owner}/shop"
    github.double.add_repository(repository, github.installation_id, files=BASE_FILES)
    base = github.double.branches(repository)["main"]
    app = app_of(github)

    first = await publish_on_github(app, github.installation_id, repository, change(base=base))
    again = await publish_on_github(app, github.installation_id, repository, change(base=base))

    assert again == first and first.base_branch == "main"
    assert github.double.counts.pulls_created == 1 and github.double.counts.pushes == 1
    assert github.double.counts.branches_created[repository] == 1
    [pull] = github.double.pulls(repository)
    assert (pull.number, pull.head, pull.base, pull.title) == (
        1,
        "cofounder/b1",
        "main",
        "Add slugs",
    )
    assert pull.head_sha == first.pushed.head_sha == first.pull.head_sha
    assert first.pull.url.endswith(f"/{repository}/pull/1") and first.pull.state == "open"
    # The branch is the build's files over the base: shop/__init__.py deleted, the rest as built.
    assert "+Now with slugs." in first.pushed.diff and "-VERSION = 1" in first.pushed.diff


async def test_credentials_never_show_in_errors_or_logs(
    github: InstalledApp, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = app_of(github)
    token = await app.token(github.installation_id)
    with pytest.raises(BadRequest) as missing:  # not a repository the installation has
        await publish_on_github(app, github.installation_id, "acme/elsewhere", change())
    assert "404" in str(missing.value)

    stranger = GitHubApp(github.app_id, SecretStr(new_app_key().private_key_pem), github.api_url)
    with pytest.raises(NotAuthorized) as refused:
        await stranger.token(github.installation_id)
    assert "401" in str(refused.value)

    env = await app.git_env(github.installation_id)
    text = " ".join([str(missing.value), str(refused.value), caplog.text, repr(app)])
    assert token not in text and env["GIT_CONFIG_VALUE_0"] not in text
    assert github.private_key_pem.splitlines()[1] not in text


async def test_a_private_key_set_on_one_line_works(
    github: InstalledApp, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_line = github.private_key_pem.strip().replace("\n", "\\n")  # as a .env file holds it
    monkeypatch.setenv("GITHUB_APP_ID", str(github.app_id))
    monkeypatch.setenv("GITHUB_PRIVATE_KEY", one_line)
    monkeypatch.setenv("GITHUB_API_URL", github.api_url)
    app = github_app(Settings())
    assert app is not None and (await app.token(github.installation_id)).startswith("ghs_")
