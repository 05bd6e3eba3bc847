"""The constrained field types of request and response bodies, each with its check."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Annotated

from fastapi import Header
from pydantic import AfterValidator, BeforeValidator, StringConstraints

from cofounder.db.models import as_utc

# An Idempotency-Key becomes a feedback's id `api:<key>`, which holds 200 characters at most.
IDEMPOTENCY_KEY_MAX = 196
# Printable ASCII without spaces: what a header carries safely.
IDEMPOTENCY_KEY_PATTERN = r"^[\x21-\x7e]+$"
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
GOAL_MAX = 4000
# PostgreSQL text cannot hold NUL, so free text refuses it here rather than with a 500 on insert.
TEXT_PATTERN = r"^[^\x00]*$"
# Text with a character other than whitespace: JSON Schema's way to say "not blank".
GOAL_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"


def check_slug(value: object) -> object:
    """A project slug: lowercase letters, digits and '-', 1 to 63 characters."""
    if isinstance(value, str) and not SLUG_PATTERN.fullmatch(value):
        raise ValueError(
            "project must be 1-63 characters of lowercase letters, digits and '-', "
            "starting with a letter or digit"
        )
    return value


def check_text(value: object) -> object:
    """Free text the database can store: no NUL character."""
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("text must not contain a NUL character")
    return value


def says_something(field: str) -> Callable[[object], object]:
    """The check that `field` says something: it holds a character other than whitespace (and
    no NUL)."""

    def check(value: object) -> object:
        check_text(value)
        if isinstance(value, str) and not value.strip():
            raise ValueError(f"{field} must contain a character other than whitespace")
        return value

    return check


# The constraints put each rule into /openapi.json; the check before them refuses a mismatch in
# a sentence instead of pydantic's "String should match pattern '...'". A non-string passes the
# check untouched and meets pydantic's own type error.
Slug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=SLUG_PATTERN.pattern),
    BeforeValidator(check_slug),
]
# Lengths count the goal as sent, so the schema's limits are the ones enforced; it is stored
# without surrounding whitespace.
Goal = Annotated[
    str,
    StringConstraints(min_length=1, max_length=GOAL_MAX, pattern=GOAL_PATTERN),
    BeforeValidator(says_something("goal")),
    AfterValidator(str.strip),
]
Comment = Annotated[
    str, StringConstraints(max_length=4000, pattern=TEXT_PATTERN), BeforeValidator(check_text)
]
UtcDatetime = Annotated[datetime, AfterValidator(as_utc)]

# The header that makes a request safe to repeat: the same key with the same body does it once.
IdempotencyKey = Annotated[
    str | None,
    Header(
        min_length=1,
        max_length=IDEMPOTENCY_KEY_MAX,
        pattern=IDEMPOTENCY_KEY_PATTERN,
        description="Repeating a request with the same key and body does it once; the repeat"
        " answers what the first did.",
    ),
]
