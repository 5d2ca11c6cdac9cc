"""`make bench`: how long the training pipeline takes, and what ZenML + MLflow add.

Writes reports/bench.json. Not a test: it measures and records, it asserts nothing.

* plain:    the same five steps as plain function calls in a fresh interpreter: load,
            validate, train, evaluate (no champion), and deploy = write the bundle, save it
            as an MLflow pyfunc *file* and serve it with `mlflow models serve` until it
            answers for every pair. No ZenML, no tracking, no registry.
* pipeline: `cryptocast train` in a fresh ZenML home (so: no champion, promote, serve),
            then a second identical run (cached steps, decision keep).
The setup of the fresh home (`cryptocast setup`) is timed separately. Sections
(``--sections``, each written to the report as soon as it is done):

* loops:      what a user waits on, each against its goal (issue 23): `--help`, a first
              and a second `cryptocast train`, `status`/`versions`/`predict`, a model
              server's start, a killed server and a promotion seen through the front
              door, front door and model server latency side by side (three runs);
* pipeline:   the two above, serving latency, the front door under load and releases;
* scaling:    the pipeline and the plain functions on 2, 8, 16 and 32 pairs;
* contention: fitting and backtesting, and the default `cryptocast train`, on an idle
              machine and next to one busy process (with and without the thread budget).
All runs use the sample source.

This file parses the arguments and writes the report; the sections live in
``scripts/bench_loops.py`` (loops) and ``scripts/bench_runs.py`` (pipeline, scaling,
contention), the plain functions in ``scripts/bench_plain.py``, the latency measurements
in ``scripts/bench_latency.py`` and the shared helpers (timed commands, fresh homes,
process cleanup) in ``scripts/bench_common.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file (make bench): `scripts.` from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts.bench_common import ROOT
from scripts.bench_loops import loops
from scripts.bench_plain import plain
from scripts.bench_runs import contention_section, pipeline_section, scaling_section

SECTIONS = ("loops", "pipeline", "scaling", "contention")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gran", default="hour", choices=["hour", "day"])
    ap.add_argument("--out", default=str(ROOT / "reports" / "bench.json"))
    ap.add_argument(
        "--sections",
        default=",".join(SECTIONS),
        help=f"comma-separated, of {', '.join(SECTIONS)} (the others stay as in --out)",
    )
    ap.add_argument("--plain-only", metavar="FILE", help=argparse.SUPPRESS)
    ap.add_argument("--pairs", help=argparse.SUPPRESS)
    ap.add_argument("--threads", default="config", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.plain_only:
        pairs = args.pairs.split() if args.pairs else None
        plain(args.gran, Path(args.plain_only), pairs, args.threads)
        return
    wanted = [x.strip() for x in args.sections.split(",") if x.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"bench: unknown section(s) {unknown}: choose from {list(SECTIONS)}")
    out = Path(args.out)
    report = json.loads(out.read_text()) if out.exists() else {}
    if report.get("granularity", args.gran) != args.gran:
        report = {}  # another granularity's figures: start over
    report |= {
        "granularity": args.gran,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
    }
    run = {
        "loops": loops,
        "pipeline": pipeline_section,
        "scaling": scaling_section,
        "contention": contention_section,
    }
    for name in wanted:
        started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        report[name] = run[name](args.gran) | {"measured_at": started}
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2))  # each section as soon as it is done
    print(json.dumps({k: report[k] for k in wanted}, indent=2))


if __name__ == "__main__":
    main()
