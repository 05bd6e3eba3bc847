"""Feedback on a build's pull request, given through the API rather than on GitHub."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from api.schemas.fields import GOAL_PATTERN, check_text
from cofounder.payloads import FEEDBACK_LIMIT

# An Idempotency-Key becomes the feedback's id `api:<key>`, which holds 200 characters at most.
IDEMPOTENCY_KEY_MAX = 196
# Printable ASCII without spaces: what a header carries safely.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"


def check_feedback(value: object) -> object:
    """Feedback says something: it holds a character other than whitespace (and no NUL)."""
    check_text(value)
    if isinstance(value, str) and not value.strip():
        raise ValueError("body must contain a character other than whitespace")
    return value


FeedbackText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=FEEDBACK_LIMIT, pattern=GOAL_PATTERN),
    BeforeValidator(check_feedback),
]


class FeedbackCreate(BaseModel):
    """What the build should change on its pull request, in plain words, as a reviewer says it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    body: FeedbackText = Field(examples=["Also accept underscores as separators."])
