"""The scripted co-founder's Node.js project: what every role answers when the goal asks for one.

The rule: a goal is a Node.js one when it has the word "node", "nodejs", "node.js" or
"javascript" in it, in any case ("A Node.js library…", "slugs in JavaScript"); "nodes" or
"TypeScript" are not. Every other goal gets the Python slugkit of script.py.

The project mirrors that one: `slugify` in `index.js`, `node:test` tests in
`test/slugify.test.js`, a package.json whose test script is `node --test` and no dependencies.
The first attempt has the same one bug (repeated separators are not collapsed); the debugger
reads it off the failed assertion in node's TAP output, the coder fixes it once the request
carries a diagnosis (or the reviewer's findings), and the reviewer approves only the fixed code.
Faults apply as for Python, except `picky` (the reviewer asks nothing more of a Node.js project);
`slow_tests` adds a slow `node:test` test. There is no feature build for an existing project.
Every answer is a pure function of the request, as the rest of the offline model's are.
The agent loop coder's turns are in node_coder.py.
"""

from __future__ import annotations

import json
import re
from typing import Any

from cofounder.offline_model import script

_GOAL = re.compile(r"\b(?:node(?:\.?js)?|javascript)\b", re.IGNORECASE)
NPM_TEST = "npm test --silent"
MODULE = "index.js"
TESTS = "test/slugify.test.js"
FILES = [MODULE, TESTS, "package.json", "README.md"]
# The line the fix changes, before and after (the coder edits exactly this; it occurs once).
BUGGY = ".replace(/[^a-z0-9]/g, separator)"
FIXED = ".replace(/[^a-z0-9]+/g, separator)"
# The debugger's prompt ends with the test run's log under this heading (activities/llm.py).
LOG_HEADING = "Failing test log:"

_MODULE = r"""'use strict';

/** Lower-case ASCII words of `text` joined by `separator`. */
function slugify(text, separator = '-') {
  const ascii = text.normalize('NFKD').replace(/[^\x00-\x7f]/g, '');
  const slug = ascii.toLowerCase()PATTERN;
  return trim(slug, separator);
}

/** `slug` without `separator` at either end. */
function trim(slug, separator) {
  let start = 0;
  let end = slug.length;
  while (separator && slug.startsWith(separator, start)) start += separator.length;
  while (separator && end > start && slug.endsWith(separator, end)) end -= separator.length;
  return slug.slice(start, end);
}

module.exports = { slugify };
"""

_TESTS = """'use strict';

const test = require('node:test');
const assert = require('node:assert');
const { slugify } = require('../index.js');

test('words are joined by hyphens', () => {
  assert.strictEqual(slugify('Hello World'), 'hello-world');
});

test('punctuation and spaces collapse into one separator', () => {
  assert.strictEqual(slugify('Hello,  World!'), 'hello-world');
});

test('accents are transliterated', () => {
  assert.strictEqual(slugify('Crème brûlée'), 'creme-brulee');
});

test('edges are trimmed', () => {
  assert.strictEqual(slugify('  -Leading and trailing-  '), 'leading-and-trailing');
});

test('a custom separator', () => {
  assert.strictEqual(slugify('Two words', '_'), 'two_words');
});

test('nothing left gives an empty slug', () => {
  assert.strictEqual(slugify('!!!'), '');
});
"""

_README = """# slugkit

Turns titles into URL slugs: `slugify('Hello, World!') === 'hello-world'`.

Goal: {goal}

Run the tests with `npm test`.
"""

_PACKAGE = {
    "name": "slugkit",
    "version": "0.1.0",
    "description": "Turn titles into URL slugs.",
    "main": MODULE,
    "private": True,
    "scripts": {"test": "node --test"},
}


def wanted(goal: str) -> bool:
    """Whether `goal` asks for a Node.js project (the rule in this module's docstring)."""
    return _GOAL.search(goal) is not None


def plan(goal: str) -> dict[str, Any]:
    """The architect's plan for a Node.js goal: slugkit as a dependency-free npm package."""
    short = " ".join(goal.split())[:120]
    return {
        "title": f"slugkit for Node.js: {short}",
        "summary": f"To deliver '{short}', build a tiny dependency-free npm package exporting "
        "`slugify(text, separator = '-')` from index.js, tested with node:test and node:assert.",
        "steps": [
            {
                "title": "Write slugify in index.js with node:test tests and package.json",
                "description": "CommonJS, no dependencies; the test script is `node --test`. "
                "Test separators, accents, trimming and empty results.",
                "files": [MODULE, TESTS, "package.json"],
            },
            {"title": "Document usage in README.md", "files": [script.README]},
        ],
        "files": list(FILES),
        "dependencies": [],
        "test_command": NPM_TEST,
        "estimated_cost_usd": 0.05,
    }


def project_files(goal: str, fixed: bool) -> dict[str, str]:
    """The project's files; the first attempt (`fixed=False`) keeps the one bug."""
    return {
        MODULE: _MODULE.replace("PATTERN", FIXED if fixed else BUGGY),
        TESTS: _TESTS,
        "package.json": json.dumps(_PACKAGE, indent=2) + "\n",
        "README.md": _README.format(goal=" ".join(goal.split())[:200]),
    }


def diagnosis(text: str) -> dict[str, str]:
    """The debugger's reading of the failed assertions in the log (node --test's TAP output)."""
    failures = _failures(text.rpartition(LOG_HEADING)[2])
    for name, expected, actual in failures:
        if actual != expected and re.sub(r"([^a-z0-9])\1+", r"\1", actual) == expected:
            return {
                "summary": f"Repeated separators are not collapsed: '{name}' expects "
                f"'{expected}' but slugify gives '{actual}', one separator for each "
                "non-alphanumeric character.",
                "fix": "In index.js replace runs of non-alphanumeric characters with one "
                "separator: use the pattern /[^a-z0-9]+/g instead of /[^a-z0-9]/g.",
            }
    if failures:
        name, expected, actual = failures[0]
        return {
            "summary": f"'{name}' fails: slugify gives '{actual}' where '{expected}' is expected.",
            "fix": f"Change slugify in index.js so that this case gives '{expected}'.",
        }
    return {
        "summary": "The log shows no failed assertion to point at a bug in slugify.",
        "fix": "Run `npm test` and align slugify with the failing tests.",
    }


def _failures(log: str) -> list[tuple[str, str, str]]:
    """(test name, expected, actual) of each failed test in a TAP log that says them."""
    found = []
    blocks = re.split(r"^(?=(?:not )?ok \d+ - |1\.\.\d+)", log, flags=re.MULTILINE)
    for block in blocks:
        name = re.match(r"not ok \d+ - (.+)", block)
        expected = re.search(r"^\s+expected: (.+)$", block, re.MULTILINE)
        actual = re.search(r"^\s+actual: (.+)$", block, re.MULTILINE)
        if name and expected and actual:
            found.append((name.group(1), _unquoted(expected.group(1)), _unquoted(actual.group(1))))
    return found


def _unquoted(value: str) -> str:
    value = value.strip()
    quoted = len(value) >= 2 and value[0] == value[-1] and value[0] in "'\""
    return value[1:-1] if quoted else value


def review(workspace_text: str) -> dict[str, Any]:
    """The reviewer's verdict on the workspace shown in the request."""
    if FIXED in workspace_text:
        return {
            "approved": True,
            "summary": "slugify is small, dependency-free and covered by node:test tests.",
            "comments": ["Consider a maxLength option later; not needed for this goal."],
        }
    return {
        "approved": False,
        "summary": "slugify leaves repeated separators in slugs.",
        "comments": ["Collapse runs of non-alphanumeric characters into one separator."],
    }
