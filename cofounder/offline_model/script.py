"""The scripted co-founder: what the offline model answers for each role.

Every answer is a pure function of the request's text, so a retried or replayed call gets the same
answer. The project is small but real: `python -m pytest -q` runs its tests from the workspace
root. The first attempt has exactly one bug the tests catch (repeated separators are not
collapsed); the coder fixes it once the request carries the debugger's diagnosis. A second build
of the project, once the first is merged, adds a feature to that code: `slugify(max_length=...)`.
"""

from __future__ import annotations

from typing import Any

from cofounder.offline_model import recall

# The coder activity puts the debugger's diagnosis under this heading (activities/llm.py),
# and the agent loop the reviewer's findings under the other (activities/llm_tools.py).
DIAGNOSIS_HEADING = "Diagnosis of the failing tests:"
REVIEW_HEADING = "The reviewer sent the code back; address these findings:"
# ... and opens a plan step's conversation with this (activities/llm_tools.py).
STEP_HEADING = "Your task now is step"
FEEDBACK_HEADING = "Feedback on the pull request to answer now"
# The plan's step that writes the README (1-based); the one before writes the code.
DOCS_STEP = 2
README = "README.md"

_BUGGY_PATTERN = 'r"[^a-z0-9]"'
_FIXED_PATTERN = 'r"[^a-z0-9]+"'
# The line the fix changes, before and after (the agent's coder edits exactly this).
BUGGY = f"re.sub({_BUGGY_PATTERN},"
FIXED = f"re.sub({_FIXED_PATTERN},"

_MODULE = '''"""slugkit: turn titles into URL slugs."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["slugify"]


def slugify(text: str, separator: str = "-") -> str:
    """Lower-case ASCII words of `text` joined by `separator`."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(PATTERN, separator, ascii_text.lower())
    return slug.strip(separator)
'''

_TESTS = """from slugkit import slugify


def test_words_are_joined_by_hyphens():
    assert slugify("Hello World") == "hello-world"


def test_punctuation_and_spaces_collapse_into_one_separator():
    assert slugify("Hello,  World!") == "hello-world"


def test_accents_are_transliterated():
    assert slugify("Crème brûlée") == "creme-brulee"


def test_edges_are_trimmed():
    assert slugify("  -Leading and trailing-  ") == "leading-and-trailing"


def test_custom_separator():
    assert slugify("Two words", separator="_") == "two_words"


def test_nothing_left_gives_empty_slug():
    assert slugify("!!!") == ""
"""

# What the reviewer asks for when it is missing, and the coder then adds.
DIGITS_TEST_NAME = "test_digits_are_kept"
DIGITS_TEST = f"""

def {DIGITS_TEST_NAME}():
    assert slugify("Top 10 Tips") == "top-10-tips"
"""
LAST_TEST_LINE = '    assert slugify("!!!") == ""\n'

_README = """# slugkit

Turns titles into URL slugs: `slugify("Hello, World!") == "hello-world"`.

Goal: {goal}

Run the tests with `python -m pytest -q`.
"""

_PYPROJECT = """[project]
name = "slugkit"
version = "0.1.0"
requires-python = ">=3.9"

[tool.pytest.ini_options]
testpaths = ["tests"]
"""

FILES = ["slugkit/__init__.py", "tests/test_slugify.py", "README.md", "pyproject.toml"]


def plan(goal: str, request: str = "") -> dict[str, Any]:
    """The architect's plan for any goal: the slugkit library, or when the repository it is
    shown already has it (a merged build's), the feature added to it."""
    short = " ".join(goal.split())[:120] or "a small library"
    if f"{FILES[0]} (" in request:
        return recall.remembered(_feature_plan(short), goal, request)
    return recall.remembered(_first_plan(short), goal, request)


def _first_plan(short: str) -> dict[str, Any]:
    return {
        "title": f"slugkit: {short}",
        "summary": f"To deliver '{short}', build a tiny dependency-free package `slugkit` with "
        "`slugify(text, separator='-')`, covered by pytest tests runnable from the root.",
        "steps": [
            {
                "title": "Create the slugkit package with slugify() and its pytest tests",
                "description": "Separators, accents, trimming and empty results, tested.",
                "files": [FILES[0], FILES[1], FILES[3]],
            },
            {"title": "Document usage in README.md", "files": [README]},
        ],
        "files": list(FILES),
        "dependencies": [],
        "test_command": "python3 -m pytest -q -p no:cacheprovider",
        "estimated_cost_usd": 0.05,
    }


def _feature_plan(short: str) -> dict[str, Any]:
    module, tests = FILES[0], "tests/test_max_length.py"
    return {
        "title": f"slugkit: {short}",
        "summary": f"To deliver '{short}', extend the existing slugify in {module} rather than "
        "start anew, with tests of the new behaviour beside the existing ones.",
        "steps": [
            {
                "title": f"Add max_length to slugify in {module}, with its tests",
                "description": "Cut at a separator; keep every existing behaviour.",
                "files": [module, tests],
            },
            {"title": "Document max_length in README.md", "files": [README]},
        ],
        "files": [module, tests, README],
        "dependencies": [],
        "test_command": "python3 -m pytest -q -p no:cacheprovider",
        "estimated_cost_usd": 0.05,
    }


def project_files(goal: str, fixed: bool, digits_test: bool = False) -> dict[str, str]:
    """The project's files; the first attempt (`fixed=False`) keeps the one bug. Without the
    digits test, which a picky reviewer asks for."""
    pattern = _FIXED_PATTERN if fixed else _BUGGY_PATTERN
    return {
        "slugkit/__init__.py": _MODULE.replace("PATTERN", pattern),
        "tests/test_slugify.py": _TESTS + (DIGITS_TEST if digits_test else ""),
        "README.md": _README.format(goal=" ".join(goal.split())[:200]),
        "pyproject.toml": _PYPROJECT,
    }


def slow_test(seconds: float) -> str:
    """A test that takes `seconds`: the fault the tests use to catch a sandbox run mid-way."""
    return f"import time\n\n\ndef test_slow():\n    time.sleep({seconds})\n"


def diagnosis(test_log: str) -> dict[str, str]:
    """The debugger's reading of a failing test log."""
    if "hello--" in test_log or "collapse" in test_log:
        return {
            "summary": "Repeated separators are not collapsed: each non-alphanumeric character "
            "becomes its own separator, so 'Hello,  World!' gives 'hello---world'.",
            "fix": "In slugkit/__init__.py match runs of non-alphanumeric characters: use the "
            "pattern [^a-z0-9]+ instead of [^a-z0-9].",
        }
    return {
        "summary": "The failure does not point at a specific bug in slugify.",
        "fix": "Re-read the failing assertions and align slugify with the tests.",
    }


def review(workspace_text: str, picky: bool = False) -> dict[str, Any]:
    """The reviewer's verdict on the workspace shown in the request; a picky one also wants a
    test that digits are kept."""
    if _FIXED_PATTERN in workspace_text and (DIGITS_TEST_NAME in workspace_text or not picky):
        return {
            "approved": True,
            "summary": "slugify is small, dependency-free and covered by focused tests.",
            "comments": ["Consider a max_length option later; not needed for this goal."],
        }
    if _FIXED_PATTERN in workspace_text:
        return {
            "approved": False,
            "summary": "The code is right, but nothing shows that digits survive slugify.",
            "comments": [
                f"Add a test `{DIGITS_TEST_NAME}`: slugify('Top 10 Tips') == 'top-10-tips'."
            ],
        }
    return {
        "approved": False,
        "summary": "slugify leaves repeated separators in slugs.",
        "comments": ["Collapse runs of non-alphanumeric characters into one separator."],
    }
