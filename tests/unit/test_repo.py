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


MAX_LINES = 450
FIRST_PARTY_DIRS = ("src", "cli", "infra", "steps", "pipelines", "app", "scripts", "tests")


def long_files(root, limit: int = MAX_LINES) -> dict[str, int]:
    """First-party Python files under ``root`` longer than ``limit`` lines: path -> lines."""
    out = {}
    for d in FIRST_PARTY_DIRS:
        for path in sorted((root / d).rglob("*.py")):
            if "__pycache__" in path.parts:
                continue
            n = len(path.read_text(encoding="utf-8").splitlines())
            if n > limit:
                out[str(path.relative_to(root))] = n
    return out


def test_no_first_party_python_file_is_longer_than_450_lines():
    """A file past 450 lines holds more than one responsibility: split it by what it does."""
    offenders = long_files(ROOT)
    assert offenders == {}, "split these files (path: lines): " + ", ".join(
        f"{p}: {n}" for p, n in sorted(offenders.items(), key=lambda kv: -kv[1])
    )


def test_long_files_names_a_long_file(tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "short.py").write_text("x = 1\n" * 3)
    (tmp_path / "src" / "long.py").write_text("x = 1\n" * 5)
    assert long_files(tmp_path, limit=4) == {"src/long.py": 5}
