"""The regression baseline: the chosen model's MASE, and its calibrated interval's
coverage and interval score, per pair on a fixed real dataset.

    python scripts/baseline.py           # measure and compare with the stored baseline
    python scripts/baseline.py --write   # `make baseline`: store the measurement

A fixed window of the real hourly files in ../shared/data (BTC/USDT and ETH/USDT, the
1,500 hours up to 2021-06-10 00:00 UTC), the hour config's candidates with fixed seeds,
and the same decision (cryptocast.delivery.decisions.decide) as the pipeline.
tests/realdata/test_regression.py fails
when a change makes the chosen model's MASE, or the best learned model's, worse than the
stored baseline by more than the tolerance (the chosen model may be the naive forecast
itself), its interval score worse by more than the tolerance, or its coverage further from
nominal by more than COVERAGE_TOLERANCE.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

from cryptocast.paths import REPO_ROOT as ROOT

DATA = ROOT.parent / "shared" / "data" / "cryptodatadownload"
BASELINE = ROOT / "tests" / "baselines" / "regression.json"
TOLERANCE = 0.02  # relative MASE / interval score increase allowed before the test fails
COVERAGE_TOLERANCE = 0.02  # added distance of coverage from nominal allowed
SETUP = {
    "pairs": ["BTC/USDT", "ETH/USDT"],
    "history": 1500,
    "window": 240,
    "stride": 24,
    "calibration_window": 480,
    "nhits_validation": 120,  # candles held out for early stopping (780 are fitted)
    "end": "2021-06-10T00:00:00+00:00",
}


def measure(data_dir: Path = DATA) -> dict:
    import pandas as pd

    from cryptocast.data.sources import load_ohlcv
    from cryptocast.data.validation import validate
    from cryptocast.delivery.decisions import decide
    from cryptocast.modeling.backtest import fit_and_backtest
    from cryptocast.runconfig import apply_overrides

    raw = yaml.safe_load((ROOT / "configs" / "hour.yaml").read_text())["parameters"]["config"]
    raw["data"]["history"] = 20_000
    raw["validation"]["min_history"] = 1000
    raw["evaluation"].update(
        window=SETUP["window"],
        stride=SETUP["stride"],
        calibration_window=SETUP["calibration_window"],
    )
    raw["candidates"]["nhits"]["params"]["validation"] = SETUP["nhits_validation"]
    cfg = apply_overrides(raw, source="files", data_dir=str(data_dir), pairs=SETUP["pairs"])
    frame, _ = load_ohlcv(cfg)
    end = pd.Timestamp(SETUP["end"])
    frame = frame[frame["timestamp"] <= end]
    frame = frame.groupby("pair").tail(SETUP["history"])
    clean, _ = validate(frame, cfg.validation, freq=cfg.freq, pairs=cfg.pairs)
    _, ev = fit_and_backtest(clean, cfg)
    d = decide(ev, cfg)
    by_key = ev.scores.set_index(["pair", "candidate"])
    return {
        "setup": SETUP,
        "tolerance": TOLERANCE,
        "coverage_tolerance": COVERAGE_TOLERANCE,
        "nominal": cfg.evaluation.interval,
        "pairs": {
            p.pair: {
                "model": p.challenger,
                "mase": round(p.mase, 6),
                "naive_mase": round(p.naive_mase, 6),
                "learned_mase": round(p.mase_ratio * p.naive_mase, 6),  # best learned model
                # the chosen model's calibrated interval: coverage and interval score
                "coverage": round(float(by_key.loc[(p.pair, p.challenger), "coverage"]), 6),
                "interval_score": round(
                    float(by_key.loc[(p.pair, p.challenger), "interval_score"]), 6
                ),
            }
            for p in d.pairs
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="store this measurement")
    args = ap.parse_args()
    result = measure()
    print(json.dumps(result, indent=2))
    if args.write:
        BASELINE.write_text(json.dumps(result, indent=2) + "\n")
        print(f"baseline written to {BASELINE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
