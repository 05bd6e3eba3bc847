"""How a workspace's language, install step and test command are told from its files."""

from __future__ import annotations

import json
import shlex

import pytest

from activities.sandbox.projects import BadManifest, detect, parse_counts


def test_python_requirements_install_into_the_workspace_from_the_index() -> None:
    project = detect({"requirements.txt": b"requests\n"}, index_url="http://index/simple")
    assert project.language == "python" and project.test_command.startswith("python3 -m pytest")
    assert project.install_command is not None
    assert "--target .deps" in project.install_command
    assert project.install_command.endswith("--index-url http://index/simple -r requirements.txt")
    assert project.env["PYTHONPATH"] == ".deps"


def test_pyproject_dependencies_are_installed_and_quoted() -> None:
    toml = b'[project]\nname = "x"\ndependencies = ["attrs>=23", "rich; python_version>\'3\'"]\n'
    project = detect({"pyproject.toml": toml})
    assert project.install_command is not None
    # Each requirement reaches pip as one argument, whatever shell characters it holds.
    assert shlex.split(project.install_command)[-2:] == ["attrs>=23", "rich; python_version>'3'"]
    assert detect({"app.py": b"x = 1\n"}).install_command is None


def test_the_install_marker_changes_with_the_manifests_only() -> None:
    one = detect({"requirements.txt": b"a\n", "app.py": b"1"})
    assert (
        one.manifest_digest == detect({"requirements.txt": b"a\n", "app.py": b"2"}).manifest_digest
    )
    assert one.manifest_digest != detect({"requirements.txt": b"b\n"}).manifest_digest
    assert one.marker == ".deps/.cofounder-installed"


def test_node_projects() -> None:
    with_deps = {"dependencies": {"left-pad": "1.3.0"}, "scripts": {"test": "jest"}}
    project = detect({"package.json": json.dumps(with_deps).encode()}, registry="http://npm")
    assert (project.language, project.test_command) == ("node", "npm test --silent")
    assert project.install_command == (
        "npm install --no-audit --no-fund --no-update-notifier --registry http://npm"
    )
    assert project.deps_dir == "node_modules"
    bare = detect({"package.json": b"{}"})
    assert bare.install_command is None and bare.test_command == "node --test"


@pytest.mark.parametrize(
    "files", [{"package.json": b"{not json"}, {"pyproject.toml": b"[project\n"}]
)
def test_a_broken_manifest_is_a_clear_error(files: dict[str, bytes]) -> None:
    with pytest.raises(BadManifest, match="not valid"):
        detect(files)


def test_counts_from_pytest_and_node() -> None:
    assert parse_counts(b"1 failed, 2 passed, 1 error in 1.20s\n") == (2, 2)
    assert parse_counts(b"# tests 3\n# pass 2\n# fail 1\n# cancelled 0\n") == (2, 1)
    assert parse_counts(b"\xe2\x84\xb9 pass 4\n\xe2\x84\xb9 fail 0\n") == (4, 0)
    assert parse_counts(b"crashed before any runner\n") == (0, 0)
