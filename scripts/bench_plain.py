"""The training pipeline's five steps as plain function calls in a fresh interpreter (no
ZenML, no tracking, no registry): what `make bench` compares the pipeline with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptocast.paths import REPO_ROOT as ROOT
from scripts.bench_common import LAST_CORES, PY, free_port, timed

# the entry point that runs :func:`plain` alone (``--plain-only``) in a fresh interpreter
BENCH_SCRIPT = Path(__file__).resolve().with_name("bench.py")


def plain(
    gran: str, out: Path, pairs: list[str] | None, threads: str, config: Path | None = None
) -> None:
    """Runs in its own interpreter; the clock includes the imports, as for the pipeline.
    ``threads``: ``config`` (the thread budget of ``scale``, as the fit steps do) or
    ``unlimited`` (every library's default: how it was before the budget); ``config``:
    another run configuration than ``configs/<gran>.yaml``."""
    t_start = time.perf_counter()
    import mlflow

    from cryptocast.contracts import Manifest, PairEntry
    from cryptocast.data.sources import load_ohlcv
    from cryptocast.data.validation import validate
    from cryptocast.delivery.decisions import decide
    from cryptocast.delivery.registry import pyfunc_spec
    from cryptocast.modeling.backtest import (
        close_series,
        evaluate_candidates,
        limit_threads,
        train_candidates,
        volume_series,
    )
    from cryptocast.runconfig import load_settings
    from cryptocast.serving.bundle import write_bundle
    from cryptocast.serving.client import wait_until_serving

    t = {"imports": time.perf_counter() - t_start}
    path = config or ROOT / "configs" / f"{gran}.yaml"
    cfg = load_settings(path, source="sample", pairs=pairs)
    if threads == "config":
        t["threads"] = limit_threads(cfg)

    def lap(name: str, t0: float) -> float:
        t[name] = time.perf_counter() - t0
        return time.perf_counter()

    t0 = time.perf_counter()
    t_work = t0
    frame, info = load_ohlcv(cfg)
    t0 = lap("load", t0)
    clean, _ = validate(frame, cfg.validation, freq=cfg.freq, pairs=cfg.pairs, live=info.live)
    t0 = lap("validate", t0)
    candidates = train_candidates(clean, cfg)
    t0 = lap("train", t0)
    ev = evaluate_candidates(clean, candidates, cfg)
    decision = decide(ev, cfg)
    t0 = lap("evaluate", t0)
    t["train_evaluate"] = time.perf_counter() - t_work - t["load"] - t["validate"]
    with tempfile.TemporaryDirectory() as tmp:
        chosen = {p.pair: candidates[p.pair][p.challenger] for p in decision.pairs}
        histories = {p: close_series(clean, p) for p in chosen}
        manifest = Manifest(
            granularity=cfg.granularity,
            model_name=cfg.deploy.model_name,
            freq=cfg.freq,
            horizon=cfg.horizon,
            interval=cfg.evaluation.interval,
            interval_lookback=cfg.evaluation.interval_lookback,
            volatility_halflife=cfg.evaluation.volatility_halflife,
            pairs={
                p.pair: PairEntry(calibration=ev.served[p.pair][p.challenger])
                for p in decision.pairs
            },
        )
        bundle = write_bundle(
            Path(tmp) / "bundle", chosen, histories, manifest, volume_series(clean, sorted(chosen))
        )
        mlflow.pyfunc.save_model(str(Path(tmp) / "model"), **pyfunc_spec(bundle, "plain"))
        port = free_port()
        env = os.environ | {"PATH": f"{Path(PY).parent}{os.pathsep}{os.environ['PATH']}"}
        proc = subprocess.Popen(
            [
                str(Path(PY).parent / "mlflow"),
                "models",
                "serve",
                "-m",
                str(Path(tmp) / "model"),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_until_serving(
                f"http://127.0.0.1:{port}/invocations", sorted(chosen), "plain", timeout_s=120
            )
            lap("deploy", t0)
        except Exception:
            proc.terminate()
            sys.stderr.write(proc.communicate(timeout=30)[1][-3000:])  # why it did not serve
            raise
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    t["total"] = time.perf_counter() - t_start
    out.write_text(json.dumps({k: round(v, 2) for k, v in t.items()}))


def plain_run(gran: str, pairs: list[str] | None = None, threads: str = "config") -> dict:
    """:func:`plain` in a fresh interpreter."""
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as fh:
        out = Path(fh.name)
    cmd = [PY, str(BENCH_SCRIPT), "--gran", gran, "--plain-only", str(out), "--threads", threads]
    wall, _ = timed([*cmd, *(["--pairs", " ".join(pairs)] if pairs else [])], dict(os.environ))
    res = json.loads(out.read_text()) | {"wall_s": round(wall, 2), "cores_used": LAST_CORES[0]}
    out.unlink()
    return res
