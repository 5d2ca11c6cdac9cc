"""Start a training run on behalf of the monitoring pipeline.

The run gets its own process (the packaged CLI, ``python -m cli train``): a training run
takes the granularity's lock and opens its own ZenML pipeline run and MLflow runs, which
must not nest inside the monitoring step that asked for it (ZenML's step context and
MLflow's active run belong to the process)."""

from __future__ import annotations

import os
import subprocess
import sys

from cryptocast.paths import REPO_ROOT
from cryptocast.runconfig import Overrides

# ``cryptocast train``'s exit status when the decision was REJECT (nothing beats the naive
# forecast; nothing deployed): a finished run with an answer, not a crash
REJECTED_EXIT = 3


def training_command(granularity: str, overrides: Overrides) -> list[str]:
    """``cli train`` arguments for ``granularity`` with the data ``overrides`` (source,
    data_dir, pairs; empty ones are left out)."""
    cmd = ["train", "--gran", granularity]
    flags = {"--data": overrides.source, "--data-dir": overrides.data_dir}
    flags["--pairs"] = " ".join(overrides.pairs) if overrides.pairs else None
    for flag, value in flags.items():
        if value:
            cmd += [flag, value]
    return cmd


def run_training(args: list[str]) -> int:
    """Run ``cli`` with ``args`` in a child process (output goes to this one's); return
    its exit code."""
    return subprocess.run(
        [sys.executable, "-m", "cli", *args], cwd=REPO_ROOT, env=os.environ.copy()
    ).returncode


def rejected_since(cfg, started_ms: int) -> bool:
    """Whether the newest training run of ``cfg``, started at or after ``started_ms``
    (epoch milliseconds), ended with the decision REJECT (False when that cannot be
    told: the caller then reports a plain failure)."""
    from infra.exporter_state import last_run
    from infra.stack import configure_mlflow
    from infra.tracking import TRAINING_PIPELINE

    try:
        configure_mlflow()
        run = last_run(cfg, TRAINING_PIPELINE)
    except Exception:  # the tracking store is what failed: not a rejection
        return False
    return (
        run is not None
        and run.info.start_time >= started_ms
        and run.data.tags.get("decision") == "reject"
    )
