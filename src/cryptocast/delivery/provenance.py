"""What makes a run traceable: the data it was trained on (kind, fallback, window) and
fingerprints of data, code, lockfile and git commit."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pandas as pd

from cryptocast.config import Settings
from cryptocast.contracts import Provenance, SourceInfo
from cryptocast.paths import LOCKFILE, PACKAGE_DIR, REPO_ROOT


def data_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over the frame's values, column names and dtypes (order-sensitive)."""
    h = hashlib.sha256()
    h.update(",".join(f"{c}:{t}" for c, t in frame.dtypes.items()).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def file_sha256(path: Path) -> str | None:
    """sha256 of the file at ``path``, or None when it does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def code_fingerprint() -> str:
    """sha256 of every Python file of the package: a step whose logic lives here must be
    re-run when this changes (ZenML's own cache key only covers the step's source)."""
    h = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        h.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def git_commit(root: Path = REPO_ROOT) -> str:
    """HEAD commit, suffixed with ``-dirty`` when tracked files changed; 'unknown' outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha


def run_provenance(frame: pd.DataFrame) -> dict[str, str]:
    """What reproduces a run: its data's fingerprint, the git commit, the lockfile's and the package
    code's hashes (``missing`` for an absent lockfile)."""
    return {
        "data_fingerprint": data_fingerprint(frame),
        "git_commit": git_commit(),
        "lockfile_sha256": file_sha256(LOCKFILE) or "missing",
        "code_fingerprint": code_fingerprint(),
    }


def data_provenance(source: SourceInfo, cfg: Settings) -> Provenance:
    """The provenance of a run's data: the load step's ``source`` record and ``UNTIL``."""
    until = None if cfg.data.end is None else cfg.data.end.isoformat()
    return Provenance.of_source(source, until)
