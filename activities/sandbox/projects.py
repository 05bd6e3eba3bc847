"""What kind of project a workspace holds: its language, how its dependencies are installed,
and how its tests are run and counted. Pure, so the same on every runtime."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import tomllib
from dataclasses import dataclass

PYTEST = "python3 -m pytest -q -p no:cacheprovider"
NPM_TEST = "npm test --silent"
# Installed dependencies live in the workspace (never snapshotted); the marker inside records
# which manifests they were installed from, so an unchanged project is not installed twice.
PYTHON_DEPS = ".deps"
NODE_DEPS = "node_modules"
MARKER = ".cofounder-installed"
# The files that decide a project's language, install step and test command.
MANIFESTS = ("package.json", "package-lock.json", "requirements.txt", "pyproject.toml")

_PYTEST_SUMMARY = re.compile(r"^=*\s*(\d+ \w+.*) in [\d.]+s\b")
_PYTEST_COUNT = re.compile(r"(\d+) (passed|failed|errors?)\b")
_NODE_COUNT = re.compile(r"^[#ℹ] (pass|fail) (\d+)\s*$", re.MULTILINE)


# Commands an agent runs see the installed dependencies of either language.
COMMAND_ENV = {"PYTHONPATH": PYTHON_DEPS, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "NO_COLOR": "1"}


class BadManifest(ValueError):
    """A dependency manifest that cannot be read."""


@dataclass(frozen=True)
class Project:
    language: str  # "python" or "node"
    test_command: str
    install_command: str | None  # None: nothing declared, nothing to install
    deps_dir: str
    manifest_digest: str  # of the manifests the install step reads
    env: dict[str, str]

    @property
    def marker(self) -> str:
        return f"{self.deps_dir}/{MARKER}"


def detect(
    files: dict[str, bytes], *, index_url: str | None = None, registry: str | None = None
) -> Project:
    """The project in `files` (a package.json at the top makes it Node.js, else Python);
    `index_url` and `registry` name the package index and npm registry to install from."""
    if "package.json" in files:
        return _node(files, registry)
    return _python(files, index_url)


def language_of(paths: list[str] | dict[str, bytes]) -> str:
    return "node" if "package.json" in paths else "python"


def _digest(files: dict[str, bytes], names: tuple[str, ...]) -> str:
    sha = hashlib.sha256()
    for name in names:
        sha.update(name.encode() + b"\0" + files.get(name, b"") + b"\0")
    return sha.hexdigest()


def _python(files: dict[str, bytes], index_url: str | None) -> Project:
    names = ("requirements.txt", "pyproject.toml")
    pip = "python3 -m pip install --no-cache-dir --disable-pip-version-check --no-input"
    pip += f" --target {PYTHON_DEPS}"
    if index_url:
        pip += f" --index-url {shlex.quote(index_url)}"
    install = None
    if files.get("requirements.txt", b"").strip():
        install = f"{pip} -r requirements.txt"
    elif deps := _pyproject_dependencies(files.get("pyproject.toml")):
        install = f"{pip} {' '.join(shlex.quote(d) for d in deps)}"
    return Project(
        language="python",
        test_command=PYTEST,
        install_command=install,
        deps_dir=PYTHON_DEPS,
        manifest_digest=_digest(files, names),
        env={"PYTHONPATH": PYTHON_DEPS, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"},
    )


def _pyproject_dependencies(text: bytes | None) -> list[str]:
    if not text:
        return []
    try:
        project = tomllib.loads(text.decode()).get("project", {})
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise BadManifest(f"pyproject.toml is not valid TOML: {err}") from None
    return [str(dep) for dep in project.get("dependencies", [])]


def _node(files: dict[str, bytes], registry: str | None) -> Project:
    try:
        manifest = json.loads(files["package.json"])
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadManifest(f"package.json is not valid JSON: {err}") from None
    declared = {**manifest.get("dependencies", {}), **manifest.get("devDependencies", {})}
    install = "npm install --no-audit --no-fund --no-update-notifier" if declared else None
    if install and registry:
        install += f" --registry {shlex.quote(registry)}"
    names = ("package.json", "package-lock.json")
    return Project(
        language="node",
        test_command=NPM_TEST if "test" in manifest.get("scripts", {}) else "node --test",
        install_command=install,
        deps_dir=NODE_DEPS,
        manifest_digest=_digest(files, names),
        env={"NPM_CONFIG_UPDATE_NOTIFIER": "false", "NO_COLOR": "1"},
    )


def parse_counts(tail: bytes) -> tuple[int, int]:
    """(passed, failed + errors) from pytest's or node's test summary, or (0, 0) without one."""
    text = tail.decode(errors="replace")
    for line in reversed(text.splitlines()):
        match = _PYTEST_SUMMARY.match(line.strip())
        if match:
            counts = {kind: int(n) for n, kind in _PYTEST_COUNT.findall(match.group(1))}
            failed = counts.get("failed", 0) + counts.get("error", 0) + counts.get("errors", 0)
            return counts.get("passed", 0), failed
    node = {kind: int(n) for kind, n in _NODE_COUNT.findall(text)}
    return node.get("pass", 0), node.get("fail", 0)
