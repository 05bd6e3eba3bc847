"""Projects: where a project's code lives (its local remote, or a linked GitHub repository)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

# owner/name as GitHub allows them: letters, digits, hyphens (owner); also dots and underscores.
Repository = Annotated[
    str,
    StringConstraints(
        max_length=200, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$"
    ),
]


class RepositoryLinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    repository: Repository = Field(examples=["acme/shop"])


class ProjectOut(BaseModel):
    project: str
    repository: str | None = Field(
        description="The linked GitHub repository; null: builds publish to the local remote."
    )
    installation_id: int | None = Field(description="The GitHub App's installation that has it.")
