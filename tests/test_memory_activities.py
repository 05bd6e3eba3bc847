"""What the memory activities make of a build: the lines a recall shows within its budget, and
the memories a plan, an outcome and an iteration's feedback become."""

from __future__ import annotations

from datetime import UTC, datetime

from activities.memory import from_feedback, from_plan, line, outcome, within
from cofounder.memory import Memory
from cofounder.payloads import BuildStatus, RememberRequest

AT = datetime(2026, 11, 26, tzinfo=UTC)


def memory(n: int, text: str, source: str = "b1") -> Memory:
    return Memory(
        id=f"m{n}", kind="decision", text=text, source=source, build_id="b1", created_at=AT
    )


def test_a_recall_keeps_the_best_within_its_budget_and_says_each_once() -> None:
    found = [memory(1, "Use pytest"), memory(2, "Use pytest"), memory(3, "x" * 50), memory(4, "y")]
    assert line(found[0]) == "- decision (build b1): Use pytest"
    budget = len(line(found[0])) + 1 + len(line(found[2])) + 1
    # The repeat is skipped; the third fits exactly; the fourth would pass the budget.
    assert [m.id for m in within(found, budget)] == ["m1", "m3"]
    assert within(found, 10) == []
    cited = memory(5, "@ann: rename it", source="https://github.com/a/b/pull/1#r2")
    assert line(cited) == "- decision (https://github.com/a/b/pull/1#r2): @ann: rename it"


def test_a_plan_an_outcome_and_feedback_become_keyed_memories() -> None:
    plan = {
        "title": "slugkit",
        "summary": "A slug library.",
        "decisions": [{"decision": "No dependencies.", "reason": "Easier to audit."}],
        "conventions": ["We use pytest"],
    }
    request = RememberRequest(
        build_id="b1", project="shop", goal="slugs", status=BuildStatus.FAILED, error="tests failed"
    )
    kept = [outcome(request, plan), *from_plan("b1", plan)]
    assert [(m.key, m.kind) for m in kept] == [
        ("b1:outcome:failed", "outcome"),
        ("b1:decision:1", "decision"),
        ("b1:convention:1", "convention"),
    ]
    assert (
        kept[0].text == "Build b1 for 'slugs' is failed. slugkit: A slug library. Why: tests failed"
    )
    assert kept[1].text == "No dependencies. Because: Easier to audit."
    assert outcome(request, {}).text.startswith("Build b1 for 'slugs' is failed. no plan was made")

    gathered = {
        "items": [
            {
                "id": "github:c:7",
                "kind": "review_comment",
                "author": "ann",
                "body": "Rename it",
                "path": "a.py",
                "url": "https://github.com/a/b/pull/1#r7",
            },
            {"id": "api:x", "kind": "api", "author": "local", "body": "  "},  # nothing said
        ]
    }
    (said,) = from_feedback(request, gathered)
    assert (said.key, said.kind, said.source) == (
        "b1:feedback:github:c:7",
        "feedback",
        "https://github.com/a/b/pull/1#r7",
    )
    assert said.text == "@ann (review_comment on a.py): Rename it"
