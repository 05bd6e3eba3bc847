"""Projects: where a project's code lives (its local remote, or a linked GitHub repository), and
the GitHub App's installations a user links them through."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# Logins and repository names as GitHub allows them: letters, digits and hyphens (a login);
# also dots and underscores (a repository's name).
LOGIN_PATTERN = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})"
NAME_PATTERN = r"[A-Za-z0-9._-]{1,100}"
Repository = Annotated[
    str, StringConstraints(max_length=200, pattern=rf"^{LOGIN_PATTERN}/{NAME_PATTERN}$")
]
Login = Annotated[str, StringConstraints(max_length=39, pattern=rf"^{LOGIN_PATTERN}$")]
RepositoryName = Annotated[str, StringConstraints(max_length=100, pattern=rf"^{NAME_PATTERN}$")]
# The largest id the database's BIGINT holds (an installation's, a repository's).
BIGINT_MAX = 2**63 - 1


class RepositoryLinkRequest(BaseModel):
    """Link a repository an installation of the App already has."""

    model_config = ConfigDict(extra="forbid", strict=True)

    repository: Repository = Field(examples=["acme/shop"])


class NewRepository(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    owner: Login = Field(
        description="The organisation the App is installed on, as its installation's owner.",
        examples=["acme"],
    )
    name: RepositoryName = Field(examples=["shop"])
    private: bool = True


class RepositoryCreateRequest(BaseModel):
    """Ask the App to create the repository (with a README, so it has a default branch), or
    link it if the organisation already has it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    create: NewRepository


class ProjectOut(BaseModel):
    project: str
    repository: str | None = Field(
        description="The linked GitHub repository; null: builds publish to the local remote."
    )
    installation_id: int | None = Field(description="The GitHub App's installation that has it.")


class InstallationOut(BaseModel):
    """An installation of the GitHub App, claimed by the caller."""

    installation_id: int
    account: str = Field(description="The GitHub account it is installed on.")
    account_type: str = Field(description="Organization or User.")
    suspended: bool
