"""The packaged CLI: its entry point, and the commands that need no ZenML run."""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from cli import cli
from cryptocast.contracts import Manifest, PairEntry
from cryptocast.modeling.forecasting import Forecaster
from cryptocast.serving.bundle import MANIFEST, write_bundle
from tests.conftest import CLI, ROOT


def test_console_script_lists_every_command_group():
    proc = subprocess.run([CLI, "--help"], capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stderr
    listed = {line.split()[0] for line in proc.stdout.split("Commands:")[1].splitlines() if line}
    assert listed == {n for n, c in cli.commands.items() if not c.hidden}
    assert {"train", "serve", "promote", "rollback", "monitor", "setup", "tracking-uri"} <= listed


def _bundle(tmp_path):
    idx = pd.date_range("2024-01-01", periods=100, freq="h", tz="UTC")
    history = pd.Series(100 + np.arange(100.0), index=idx)
    metrics = {"mase": 0.91234, "smape": 1.5, "mae": 12.0, "coverage": 0.8}
    manifest = Manifest(
        granularity="hour",
        freq="1h",
        horizon=3,
        interval=0.8,
        interval_lookback=48,
        model_name="cli-test",
        model_version="4",
        data_source="files",
        pairs={"BTC/USDT": PairEntry(metrics=metrics, naive_mase=1.0)},
    )
    fc = Forecaster.build("drift", "drift", {}, 3, 0).fit(history)
    return write_bundle(tmp_path / "b", {"BTC/USDT": fc}, {"BTC/USDT": history}, manifest)


def test_metrics_table_of_a_manifest(tmp_path):
    bundle = _bundle(tmp_path)
    out_file = tmp_path / "reports" / "m.md"
    out = CliRunner().invoke(
        cli, ["metrics", "--manifest", str(bundle / MANIFEST), "--out", str(out_file)]
    )
    assert out.exit_code == 0, out.output
    assert "### cli-test v4 (hour, data: files)" in out.output
    assert "| BTC/USDT | drift | 0.9123 | 1.0000 | 1.500 | 12 | 0.80 | - |" in out.output
    assert out_file.read_text() in out.output


def test_missing_manifest_says_what_to_run(tmp_path):
    out = CliRunner().invoke(cli, ["metrics", "--manifest", str(tmp_path / "nope.json")])
    # a state the user can change: `error: ...` and exit 2, not click's `Error:` and 1
    assert out.exit_code == 2
    assert out.output.startswith("error: no manifest at")
    assert "run `make train GRAN=hour`" in out.output


def test_manifest_paths_do_not_depend_on_the_working_directory(tmp_path, monkeypatch):
    """The CLI once resolved models_dir against the repository root and the steps against
    the working directory; both now use the settings' absolute path."""
    from cli.common import settings

    monkeypatch.chdir(tmp_path)
    assert settings("hour").deploy.models_dir == ROOT / "models" / "hour_models"
    assert settings("day").data.cache_dir == ROOT / "data" / "cache"


def _failing_training(monkeypatch, rejected: bool, fails: bool = True):
    import cli.train
    import infra.stack
    import pipelines.training
    from infra import retrain, runs

    def fail(*_a, **_k):
        if fails:
            raise RuntimeError("Pipeline run has failed due to failure in step(s): deploy")

    monkeypatch.setattr(pipelines.training, "run_training", fail)
    monkeypatch.setattr(infra.stack, "ensure_stack", lambda: [])
    monkeypatch.setattr(runs, "fail_orphans", lambda cfg, why: [])
    monkeypatch.setattr(runs, "retire_orphan_servers", lambda cfg: [])
    monkeypatch.setattr(retrain, "rejected_since", lambda cfg, started_ms: rejected)
    monkeypatch.setattr(cli.train, "granularity_lock", lambda cfg, what: _NoLock())


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_a_users_error_before_the_pipeline_is_not_a_failed_run(monkeypatch):
    """It was "training pipeline FAILED ... (the failing step's report is printed
    above)", with no step run and nothing above."""
    import infra.stack
    from infra.remotestack import StackError

    _failing_training(monkeypatch, rejected=False)

    def half_set():
        raise StackError("ZENML_STORE_API_KEY is set (your own servers) but S3_ENDPOINT_URL is not")

    monkeypatch.setattr(infra.stack, "ensure_stack", half_set)
    out = CliRunner().invoke(cli, ["train", "--gran", "hour", "--data", "sample"])
    assert isinstance(out.exception, StackError)  # cli.main: `error: ...`, exit 2
    assert "FAILED" not in out.output


def test_a_run_rejected_by_the_require_learned_gate_exits_3_with_a_message(monkeypatch):
    """A REJECT is a finished run with a verdict (the pipeline does not fail): exit 3 only
    when the quality gate asks for a learned model."""
    from infra.retrain import REJECTED_EXIT

    _failing_training(monkeypatch, rejected=True, fails=False)
    args = ["train", "--gran", "hour", "--data", "sample"]
    out = CliRunner().invoke(cli, [*args, "--require-learned"])
    assert out.exit_code == REJECTED_EXIT == 3
    assert "REJECTED" in out.output
    assert "nothing was deployed" in out.output
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    assert "finished" in out.output


def test_a_data_error_in_a_step_exits_2_with_its_reason_last(monkeypatch, capsys):
    """It was exit 1 ("FAILED", a bug's status) with the reason 11-16 lines above the end;
    the traceback of a user's error does not belong in errors.log either."""
    import cli as cli_module
    import pipelines.training
    from cli.errors import ERROR_LOG
    from cryptocast.data.filereader import FileSourceError

    _failing_training(monkeypatch, rejected=False)
    reason = "no 1 hour file in data/ holds SOL/USDT (files found: btc.csv (BTC/USDT))"

    def fail(*_a, **_k):
        raise FileSourceError(reason)

    monkeypatch.setattr(pipelines.training, "run_training", fail)
    monkeypatch.delenv("CRYPTOCAST_DEBUG", raising=False)
    monkeypatch.setattr(sys, "argv", ["cryptocast", "train", "--gran", "hour", "--data", "sample"])
    before = ERROR_LOG.read_text() if ERROR_LOG.exists() else ""
    with pytest.raises(SystemExit) as exit_:
        cli_module.main()
    assert exit_.value.code == 2
    out = capsys.readouterr()
    assert out.err.strip().splitlines()[-1] == f"error: {reason}"
    assert "stopped after" in out.err
    assert "FAILED" not in out.err + out.out
    assert (ERROR_LOG.read_text() if ERROR_LOG.exists() else "") == before


def test_a_crashed_training_run_exits_1_naming_where_its_traceback_went(monkeypatch):
    """It said "(the failing step's report is printed above)" with nothing above, and
    the error log got the traceback twice (ZenML's log of the step, then the exit)."""
    import logging

    import pipelines.training
    from cli.errors import ERROR_LOG, STEP_FAILURE_LOGGERS

    _failing_training(monkeypatch, rejected=False)
    monkeypatch.delenv("CRYPTOCAST_DEBUG", raising=False)

    def crash(*_a, **_k):
        try:
            raise ValueError("No objects to concatenate")
        except ValueError:  # what ZenML's orchestrator does with a failed step
            logging.getLogger(STEP_FAILURE_LOGGERS[0]).exception("Step evaluate failed.")
            raise

    monkeypatch.setattr(pipelines.training, "run_training", crash)

    def entries() -> int:  # each kept traceback starts a line with "--- <time>"
        text = ERROR_LOG.read_text() if ERROR_LOG.exists() else ""
        return len(re.findall(r"^--- ", text, flags=re.M))

    before = entries()
    out = CliRunner().invoke(cli, ["train", "--gran", "hour", "--data", "sample"])
    assert out.exit_code == 1
    assert "FAILED after" in out.output
    assert (
        f"ValueError: No objects to concatenate\n(unexpected: the traceback is in {ERROR_LOG}"
        in (out.output)
    )
    assert entries() == before + 1


def test_promote_backfill_needs_a_backfill_run():
    out = CliRunner().invoke(cli, ["train", "--gran", "hour", "--promote-backfill"])
    assert out.exit_code == 2
    assert "only applies to a backfill run (--until)" in out.output


def _run_cli(*args, env=None):
    import os

    return subprocess.run(
        [CLI, *args], capture_output=True, text=True, env=os.environ | (env or {}), timeout=120
    )


def test_a_config_mistake_is_one_line_without_a_traceback():
    proc = _run_cli("train", "--gran", "hour", "--data", "files")
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        f"error: {ROOT}/configs/hour.yaml: source 'files' needs data.data_dir (DATA_DIR=...)"
    )
    proc = _run_cli("train", "--gran", "hour", "--pairs", "BTCUSDT")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_debug_prints_the_traceback_and_errors_log_keeps_it():
    from cli.errors import ERROR_LOG

    proc = _run_cli("--debug", "train", "--gran", "hour", "--pairs", "BTCUSDT")
    assert "Traceback" in proc.stderr
    assert "ConfigError" in proc.stderr
    proc = _run_cli("train", "--gran", "hour", "--pairs", "BTCUSDT", env={"CRYPTOCAST_DEBUG": "1"})
    assert "Traceback" in proc.stderr
    assert proc.returncode == 2  # still a user's mistake, traceback or not
    assert "ConfigError: " in ERROR_LOG.read_text().split("--- ")[-1]


def test_an_unexpected_error_names_where_its_traceback_went(monkeypatch, capsys):
    import cli as cli_module
    from cli import errors

    def boom(*a, **k):
        raise KeyError("surprise")

    monkeypatch.setattr(cli_module, "cli", boom)
    monkeypatch.delenv("CRYPTOCAST_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        cli_module.main()
    assert exit_.value.code == errors.BUG_EXIT
    err = capsys.readouterr().err
    assert "error: KeyError: 'surprise'" in err
    assert f"the traceback is in {errors.ERROR_LOG}" in err


@pytest.mark.slow
def test_predict_before_any_training_says_to_train(tmp_path):
    from tests.conftest import cli_env, small_config

    small_config("hour", tmp_path, serve=False, deploy={"model_name": "cryptocast-hour-none"})
    proc = subprocess.run(
        [CLI, "predict", "--gran", "hour"],
        cwd=ROOT, env=cli_env(tmp_path), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "no hour model trained yet: run `make train GRAN=hour`" in proc.stderr
    assert "vNone" not in proc.stdout + proc.stderr


def test_make_passes_paths_with_spaces_as_one_argument():
    import shlex

    proc = subprocess.run(
        ["make", "-n", "train", "GRAN=day", "DATA_DIR=/data/my candles", "CONFIG=/c/my day.yaml"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    line = next(x for x in proc.stdout.splitlines() if "cryptocast train" in x)
    args = shlex.split(line)
    assert args[args.index("--data-dir") + 1] == "/data/my candles"
    assert args[args.index("--config") + 1] == "/c/my day.yaml"


def test_commands_before_make_install_say_to_install(tmp_path):
    for target in ("status", "predict", "versions"):
        proc = subprocess.run(
            ["make", "-s", target, f"VENV={tmp_path / 'no-venv'}"],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        assert proc.returncode == 2
        assert "not installed" in proc.stderr
        assert "run make install first" in proc.stderr
        assert "No such file" not in proc.stderr


def test_a_link_loop_as_data_dir_is_named_by_the_loader(tmp_path):
    from cli.common import data_overrides

    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    assert data_overrides(None, str(loop), None).data_dir == str(loop)  # no RuntimeError


@pytest.mark.parametrize("command", ["train", "monitor"])
def test_a_missing_data_dir_is_said_before_any_pipeline_starts(tmp_path, command):
    proc = _run_cli(command, "--gran", "hour", "--data-dir", str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert (
        proc.stderr.strip()
        == f"error: data directory {tmp_path / 'nope'} does not exist (DATA_DIR=...)"
    )
    assert "Step `load`" not in proc.stdout


def test_both_pipelines_end_a_failed_step_with_its_own_error():
    """`make monitor` offline refused a synthetic-data run in its `split` step, but the
    monitoring pipeline continued on failure: ZenML turned the user's error into "Pipeline
    run has failed" and the command printed FAILED with exit 1 instead of `error:`, exit 2."""
    from zenml.enums import ExecutionMode

    from pipelines.monitoring import monitoring
    from pipelines.training import training

    for pipeline in (training, monitoring):
        assert pipeline.configuration.execution_mode == ExecutionMode.FAIL_FAST, pipeline.name
