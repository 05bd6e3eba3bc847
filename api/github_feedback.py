"""What a GitHub event about a pull request asks of the build that opened it: the Feedback it
carries, or nothing when it carries none to act on.

Only people with a say in the repository steer a build: a bot (our own App among them), a
comment made through an App, and a drive-by commenter are passed over. Reading the payload is
all this module does; finding the build and signalling it is api/github_webhooks.py's part.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from api.errors import Invalid
from cofounder.payloads import FEEDBACK_LIMIT, Feedback

Payload = dict[str, Any]

# GitHub's author_association values of people who may steer a build; CONTRIBUTOR, NONE and
# the like are anyone who can open an issue on a public repository.
TRUSTED = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
# Check-suite conclusions that say the pull request's code is at fault (not cancelled, neutral).
FAILING = frozenset({"failure", "timed_out"})
CHECKS = "checks"


@dataclass(frozen=True)
class Asked:
    """Feedback for the build owning one of pull requests `numbers` of `repository`."""

    repository: str
    numbers: tuple[int, ...]
    feedback: Feedback
    # Only a pull request whose head is this commit (a check suite is about one commit).
    head_sha: str | None = None


def field(payload: Any, name: str, kind: type) -> Any:
    """`payload[name]` when it is a `kind`; Invalid otherwise (GitHub sent something else)."""
    value = payload.get(name) if isinstance(payload, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is int:
        raise Invalid(f"the payload has no {kind.__name__} {name!r}")
    return value


def part(payload: Payload, name: str) -> Payload:
    """`payload[name]` when it is an object; an empty one when GitHub left it out."""
    value = payload.get(name)
    return value if isinstance(value, dict) else {}


def repository_of(payload: Payload) -> str:
    return str(field(field(payload, "repository", dict), "full_name", str))


def issue_comment(payload: Payload) -> Asked | None:
    """A comment on a pull request's conversation (issues share the event: those are not)."""
    issue = field(payload, "issue", dict)
    if payload.get("action") != "created" or not issue.get("pull_request"):
        return None
    comment = field(payload, "comment", dict)
    author = _person(comment)
    if author is None:
        return None
    item = Feedback(
        id=f"github:issue-comment:{field(comment, 'id', int)}",
        kind="comment",
        author=author,
        body=_cut(comment.get("body")),
        url=_text(comment.get("html_url")),
    )
    return Asked(repository_of(payload), (field(issue, "number", int),), item)


def review_comment(payload: Payload) -> Asked | None:
    """A comment on lines of the diff; those of one review share its group."""
    if payload.get("action") != "created":
        return None
    comment = field(payload, "comment", dict)
    author = _person(comment)
    if author is None:
        return None
    comment_id = field(comment, "id", int)
    review_id = _int(comment.get("pull_request_review_id"))
    item = Feedback(
        id=f"github:review-comment:{comment_id}",
        kind="review_comment",
        author=author,
        body=_cut(comment.get("body")),
        url=_text(comment.get("html_url")),
        group=None if review_id is None else f"github:review:{review_id}",
        comment_id=comment_id,
        in_reply_to=_int(comment.get("in_reply_to_id")),
        path=_text(comment.get("path")),
        line=_int(comment.get("line")) or _int(comment.get("original_line")),
    )
    return Asked(repository_of(payload), (_number(payload),), item)


def review(payload: Payload) -> Asked | None:
    """A submitted review's own text. Without one (an approval, or a review that is only its
    comments) it asks nothing by itself: each of its comments comes as its own event."""
    if payload.get("action") != "submitted":
        return None
    submitted = field(payload, "review", dict)
    author = _person(submitted)
    body = submitted.get("body")
    if author is None or not isinstance(body, str) or not body.strip():
        return None
    review_id = field(submitted, "id", int)
    item = Feedback(
        id=f"github:review:{review_id}:submitted",
        kind="review",
        author=author,
        body=_cut(body),
        url=_text(submitted.get("html_url")),
        group=f"github:review:{review_id}",
    )
    return Asked(repository_of(payload), (_number(payload),), item)


def check_suite(payload: Payload) -> Asked | None:
    """A check suite that failed on a pull request's head commit."""
    suite = field(payload, "check_suite", dict)
    conclusion = suite.get("conclusion")
    if payload.get("action") != "completed" or conclusion not in FAILING:
        return None
    numbers = tuple(
        number
        for pull in suite.get("pull_requests") or []
        if (number := _int(pull.get("number") if isinstance(pull, dict) else None)) is not None
    )
    head_sha = str(field(suite, "head_sha", str))
    app = part(suite, "app")
    name = str(app.get("name") or app.get("slug") or "a check suite")
    url = _text(suite.get("url"))
    item = Feedback(
        # A re-run completes the same suite again, later: that is news; a redelivery is not.
        id=f"github:check-suite:{field(suite, 'id', int)}:{suite.get('updated_at') or ''}",
        kind=CHECKS,
        author=str(app.get("slug") or name),
        body=f"The check suite {name} finished {conclusion} on {head_sha}: {url or 'no url'}",
        url=url,
    )
    return Asked(repository_of(payload), numbers, item, head_sha=head_sha)


def _person(item: Payload) -> str | None:
    """The author's login when someone trusted wrote `item`; None for anyone else."""
    user = part(item, "user")
    login = user.get("login")
    if user.get("type") == "Bot" or item.get("performed_via_github_app"):
        return None
    if item.get("author_association") not in TRUSTED or not isinstance(login, str):
        return None
    return login


def _number(payload: Payload) -> int:
    return int(field(field(payload, "pull_request", dict), "number", int))


def _cut(body: Any) -> str:
    return body[:FEEDBACK_LIMIT] if isinstance(body, str) else ""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
