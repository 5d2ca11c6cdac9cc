"""Reports: a bundle's metrics (CI summaries, the release PR body) and the accuracy
report of every candidate (`make report`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from cryptocast.config import Settings
from cryptocast.contracts import Manifest, pair_slug
from cryptocast.modeling import plots
from cryptocast.modeling.backtest import Evaluation


def metrics_markdown(manifest: Manifest) -> str:
    """A markdown table of a bundle's per-pair backtest metrics."""
    lines = [
        f"### {manifest.model_name} v{manifest.model_version} ({manifest.granularity},"
        f" data: {manifest.data_source or '?'})",
        "",
        "| pair | model | MASE | naive MASE | sMAPE | MAE | coverage | interval score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for pair, entry in sorted(manifest.pairs.items()):
        m = entry.metrics
        score = f"{m['interval_score']:.3f}" if "interval_score" in m else "-"
        lines.append(
            f"| {pair} | {entry.candidate} | {m['mase']:.4f} | {entry.naive_mase:.4f} | "
            f"{m['smape']:.3f} | {m['mae']:.4g} | {m['coverage']:.2f} | {score} |"
        )
    return "\n".join(lines) + "\n"


def accuracy_markdown(
    scores: pd.DataFrame,
    tests: pd.DataFrame,
    backtests: pd.DataFrame,
    *,
    title: str,
    command: str,
    width: float,
    plots: dict[str, str],
) -> str:
    """The accuracy report: per pair x candidate the MASE relative to naive, the DM
    p-value against naive, the coverage and interval score of the calibrated interval
    (and of the uncalibrated Gaussian band on the same forecasts), the pinball loss and
    Kupiec's p-value; then the pooled coverage and the calibration plots."""
    naive = scores[scores["candidate"] == "naive"].set_index("pair")["mase"]
    p_naive = tests.set_index(["pair", "candidate"])["p_value"]
    lines = [
        f"# {title}",
        "",
        f"Made by `{command}`. Relative MASE: the candidate's MASE / the naive forecast's "
        "on the same window (below 1: better than the random walk). DM p: one-sided "
        "Diebold-Mariano (HLN) p-value that the candidate beats naive. Coverage and "
        f"interval score: the calibrated {width:.0%} interval; Gaussian: the uncalibrated "
        "band on the same forecasts. Interval score and pinball loss are scaled like MASE "
        "(lower is better).",
        "",
        "| pair | candidate | rel. MASE | DM p vs naive | coverage | Gaussian coverage | "
        "interval score | Gaussian interval score | pinball | Kupiec p |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    inside = (backtests["actual"] >= backtests["gaussian_lower"]) & (
        backtests["actual"] <= backtests["gaussian_upper"]
    )
    gauss_cov = inside.groupby([backtests["pair"], backtests["candidate"]]).mean()
    for r in scores.sort_values(["pair", "candidate"]).to_dict("records"):
        key = (r["pair"], r["candidate"])
        p = f"{p_naive[key]:.3f}" if key in p_naive.index else "-"
        lines.append(
            f"| {r['pair']} | {r['candidate']} | {r['mase'] / naive[r['pair']]:.3f} | {p} | "
            f"{r['coverage']:.3f} | {gauss_cov[key]:.3f} | {r['interval_score']:.3f} | "
            f"{r['gaussian_interval_score']:.3f} | {r['pinball']:.3f} | {r['kupiec_p']:.3f} |"
        )
    hits = (backtests["actual"] >= backtests["lower"]) & (backtests["actual"] <= backtests["upper"])
    pooled = hits.groupby(backtests["candidate"]).mean()
    by_step = hits.groupby([backtests["candidate"], backtests["step"]]).mean()
    lines += [
        "",
        f"Pooled over the pairs (nominal {width:.0%}):",
        "",
        "| candidate | coverage | worst step coverage | pooled DM p vs naive |",
        "|---|---|---|---|",
    ]
    for cand, cov in pooled.items():
        worst = by_step[cand]
        step = (worst - width).abs().idxmax()
        key = ("pooled", cand)
        p = f"{p_naive[key]:.3f}" if key in p_naive.index else "-"
        lines.append(f"| {cand} | {cov:.3f} | {worst[step]:.3f} (step {step}) | {p} |")
    lines.append("")
    for pair, path in sorted(plots.items()):
        lines += [f"![{pair} calibration]({path})", ""]
    return "\n".join(lines)


def calibration_figure(ev: Evaluation, pair: str, cfg: Settings, directory: Path) -> Path:
    """``directory/calibration_<PAIR>.png``: every candidate's calibration of ``pair``
    over the evaluation window (:func:`cryptocast.modeling.plots.calibration`)."""
    return plots.calibration(
        ev.backtests,
        pair,
        sorted(ev.backtests["candidate"].unique()),
        cfg.evaluation.quantiles,
        cfg.evaluation.interval,
        Path(directory) / f"calibration_{pair_slug(pair)}.png",
        title=f"{pair} ({cfg.granularity}): quantile calibration over the last "
        f"{cfg.evaluation.window} candles",
    )


def write_accuracy_report(cfg: Settings, out: Path, command: str) -> Path:
    """Load, validate, train and backtest every candidate as the pipeline does (no
    ZenML, no MLflow, nothing promoted) and write the accuracy report to ``out`` (a
    ``.md`` file; its PNGs go to a folder beside it)."""
    from cryptocast.data.sources import load_ohlcv
    from cryptocast.data.validation import validate
    from cryptocast.modeling.backtest import fit_and_backtest
    from cryptocast.modeling.evaluation import naive_tests
    from cryptocast.modeling.significance import overlap_lags

    frame, info = load_ohlcv(cfg)
    clean, _ = validate(frame, cfg.validation, freq=cfg.freq, pairs=cfg.pairs)
    _, ev = fit_and_backtest(clean, cfg)
    lags = overlap_lags(cfg.horizon, cfg.evaluation.stride)
    tests = naive_tests(ev.losses, cfg.evaluation.baseline, lags)
    out = Path(out)
    figures = out.with_suffix("")
    figures.mkdir(parents=True, exist_ok=True)
    shown = {}
    for pair in cfg.pairs:
        path = calibration_figure(ev, pair, cfg, figures)
        shown[pair] = f"{figures.name}/{path.name}"
    spans = clean.groupby("pair")["timestamp"].agg(["min", "max"])
    window = ", ".join(f"{p} {r['max'] - cfg.step * (cfg.evaluation.window - 1):%Y-%m-%d %H:%M}"
                       f" -> {r['max']:%Y-%m-%d %H:%M}" for p, r in spans.iterrows())  # fmt: skip
    title = (
        f"Accuracy of every candidate, {cfg.granularity} ({info.used} data; evaluation "
        f"window {window} UTC, {cfg.evaluation.window} candles, origins every "
        f"{cfg.evaluation.stride}; DM lags {lags})"
    )
    text = accuracy_markdown(
        ev.scores,
        tests,
        ev.backtests,
        title=title,
        command=command,
        width=cfg.evaluation.interval,
        plots=shown,
    )
    out.write_text(text)
    return out
