"""`make ci` and the GitHub Actions workflow run the same targets in the same order."""

from __future__ import annotations

import fnmatch
import itertools
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "ml-cd.yml"
SYSTEM_STEP = re.compile(r"^sudo apt-get update && sudo apt-get install -y [\w\s.-]+$")


def _jobs_in_order(jobs: dict) -> list[str]:
    done: list[str] = []
    while len(done) < len(jobs):
        ready = [
            n
            for n, j in jobs.items()
            if n not in done
            and all(
                d in done
                for d in ([j["needs"]] if isinstance(j.get("needs"), str) else j.get("needs", []))
            )
        ]
        assert ready, "cycle in the workflow's needs"
        done.extend(ready)
    return done


def workflow_sequence() -> list[str]:
    """The make targets of every unconditional job, in `needs` order, matrix expanded."""
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    seq = []
    for name in _jobs_in_order(jobs):
        job = jobs[name]
        if "if" in job:  # branch-only jobs (the release PR) are not part of make ci
            continue
        matrix = job.get("strategy", {}).get("matrix", {})
        combos = [
            dict(zip(matrix, values, strict=True)) for values in itertools.product(*matrix.values())
        ] or [{}]
        for combo in combos:
            for step in job["steps"]:
                for line in step.get("run", "").splitlines():
                    line = line.strip()
                    if line.startswith("make ") and line != "make install":
                        for key, value in combo.items():
                            line = line.replace("${{ matrix." + key + " }}", str(value))
                        seq.append(line.removeprefix("make "))
    return seq


def makefile_ci_sequence() -> list[str]:
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("ci:"))
    seq = []
    for line in lines[start + 1 :]:
        if not line.startswith("\t"):
            break
        if line.strip().startswith("@"):  # housekeeping, not a step
            continue
        seq.append(line.strip().removeprefix("$(CI_STEP) "))
    return seq


def test_make_ci_mirrors_the_workflow():
    assert makefile_ci_sequence() == workflow_sequence()
    assert workflow_sequence()[:2] == ["lint", "test"]


def test_every_working_step_calls_make():
    jobs = yaml.safe_load(WORKFLOW.read_text())["jobs"]
    for name, job in jobs.items():
        for step in job["steps"]:
            run = step.get("run")
            if run is None:
                continue
            assert run.startswith("make ") or SYSTEM_STEP.match(run), (name, run)


def test_a_push_that_changes_any_tracked_project_file_runs_the_workflow():
    """The paths filter covers every file that can change what CI builds or tests (a new
    top-level package once went unlisted)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    wf = yaml.safe_load(WORKFLOW.read_text())
    on = wf.get("on", wf.get(True))  # PyYAML reads the key `on` as True
    assert "workflow_dispatch" in on
    globs = on["push"]["paths"]
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    # this project's own CI entry point and empty folders' placeholders (README.md and docs/
    # are in: tests/unit/test_docs.py checks their links and make targets)
    outside = {".ci/run", "models/.gitkeep", "reports/.gitkeep"}
    relevant = [f for f in tracked if not any(f == o or f.startswith(o + "/") for o in outside)]
    unmatched = [f for f in relevant if not any(fnmatch.fnmatch(f, g) for g in globs)]
    assert unmatched == [], f"files whose changes would not run the workflow: {unmatched}"


def test_workflow_jobs():
    wf = yaml.safe_load(WORKFLOW.read_text())
    jobs = wf["jobs"]
    assert jobs["train"]["strategy"]["matrix"]["granularity"] == ["hour", "day"]
    assert jobs["release-pr"]["if"] == "github.ref == 'refs/heads/dev'"
    uploads = [
        s["with"]["name"]
        for j in jobs.values()
        for s in j["steps"]
        if s.get("uses", "").startswith("actions/upload-artifact")
    ]
    assert uploads == ["coverage", "models-${{ matrix.granularity }}"]


def test_workflow_validates_against_the_github_actions_schema():
    exe = shutil.which("check-jsonschema") or str(ROOT / ".venv" / "bin" / "check-jsonschema")
    if not Path(exe).exists():
        pytest.skip("check-jsonschema not installed")
    out = subprocess.run(
        [exe, "--builtin-schema", "vendor.github-workflows", str(WORKFLOW)],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
