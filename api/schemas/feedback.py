"""Feedback on a build's pull request, given through the API rather than on GitHub."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from api.schemas.fields import GOAL_PATTERN, says_something
from cofounder.payloads import FEEDBACK_LIMIT

FeedbackText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=FEEDBACK_LIMIT, pattern=GOAL_PATTERN),
    BeforeValidator(says_something("body")),
]


class FeedbackCreate(BaseModel):
    """What the build should change on its pull request, in plain words, as a reviewer says it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    body: FeedbackText = Field(examples=["Also accept underscores as separators."])
