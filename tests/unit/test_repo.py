"""Repository hygiene that only shows on a fresh clone otherwise."""

import shutil
import subprocess

import pytest

from tests.conftest import ROOT

SOURCE_DIRS = ("src", "steps", "pipelines", "tests", "configs", "scripts", ".ci")


def test_no_source_file_is_git_ignored():
    """A too-broad .gitignore pattern (`data/`) once hid src/cryptocast/data from git."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    files = [
        str(p.relative_to(ROOT))
        for d in SOURCE_DIRS
        for p in (ROOT / d).rglob("*")
        if p.is_file()
        and not any(part == "__pycache__" or part.endswith(".egg-info") for part in p.parts)
    ]
    ignored = subprocess.run(
        ["git", "check-ignore", *files], cwd=ROOT, capture_output=True, text=True
    ).stdout.split()
    assert ignored == []
