"""scripts/lib.sh: when the set-up scripts keep .venv and when they rebuild it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "scripts" / "lib.sh"
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def venv_ready(where: Path, version: str = VERSION) -> bool:
    script = f'source "{LIB}" && venv_ready {version}'
    return subprocess.run(["bash", "-c", script], cwd=where).returncode == 0


@pytest.fixture(scope="module")
def complete(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("complete")
    subprocess.run([sys.executable, "-m", "venv", where / ".venv"], check=True)
    return where


def test_a_complete_venv_for_this_python_is_kept(complete: Path) -> None:
    (complete / ".venv" / ".complete").touch()
    assert venv_ready(complete)


def test_a_venv_for_another_python_is_rebuilt(complete: Path) -> None:
    (complete / ".venv" / ".complete").touch()
    assert not venv_ready(complete, version="3.99")


def test_a_venv_whose_creation_did_not_finish_is_rebuilt(complete: Path) -> None:
    (complete / ".venv" / ".complete").unlink(missing_ok=True)
    assert not venv_ready(complete)


def test_a_venv_left_without_pip_is_rebuilt(tmp_path: Path) -> None:
    # What `python3 -m venv` leaves on Debian without python3-venv: an interpreter, no pip.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", tmp_path / ".venv"], check=True)
    (tmp_path / ".venv" / ".complete").touch()
    assert not venv_ready(tmp_path)
