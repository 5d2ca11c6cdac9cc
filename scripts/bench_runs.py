"""The `pipeline`, `scaling` and `contention` sections of `make bench`: the training
pipeline against the same work as plain functions, on more pairs, and next to a busy
process."""

from __future__ import annotations

import contextlib
import os
import subprocess

from scripts.bench_common import CLI, PY, cleanup, fresh_home, timed, train_timed
from scripts.bench_latency import front_door, load_test
from scripts.bench_plain import plain_run


def pipeline(gran: str) -> dict:
    home, env, run = fresh_home(gran)
    res: dict = {}
    res["setup_s"], _ = timed([CLI, "setup"], env)
    try:
        for label in ("first_run", "second_run"):
            res[label] = train_timed(gran, env)
        url = res["first_run"]["deployment"]["url"]
        print(f"bench: serving latency at {url} (20 req/s for 30 s) ...", flush=True)
        horizon = run["parameters"]["config"]["horizon"]
        payload = {"dataframe_records": [{"pair": "BTC/USDT", "horizon": horizon}]}
        res["serving"] = load_test(url, payload, rps=20, seconds=30)
        res["front_door"] = front_door(gran, env, run, url)
    finally:
        cleanup(gran, env, home)
    return res


def pipeline_section(gran: str) -> dict:
    """The default run: plain functions, then the pipeline twice, serving, front door."""
    print(f"bench: plain functions ({gran}) ...", flush=True)
    plain_res = plain_run(gran)
    print(f"bench: ZenML pipeline ({gran}), fresh home, twice ...", flush=True)
    pipe = pipeline(gran)
    first = pipe["first_run"]["wall_s"]
    fd = pipe["front_door"]
    return {
        "plain": plain_res,
        "pipeline": pipe,
        "ratio_pipeline_vs_plain": round(first / plain_res["wall_s"], 2),
        "make_train_fresh_s": round(pipe["setup_s"] + first, 2),
        "promote_to_answering_s": pipe["first_run"]["deployment"]["seconds_to_answer"],
        "goals": {
            "make_train_fresh_s<=90": pipe["setup_s"] + first <= 90,
            "ratio<=1.3": first / plain_res["wall_s"] <= 1.3,
            "second_run_s<=20": pipe["second_run"]["wall_s"] <= 20,
            "serving_p99_ms<=50_no_errors": pipe["serving"]["p99_ms"] <= 50
            and pipe["serving"]["errors"] == 0,
            "promote_to_answering_s<=15": (
                pipe["first_run"]["deployment"]["seconds_to_answer"] <= 15
            ),
            "front_p99_ms<=25_single_client": fd["single_client_50rps"]["p99_ms"] <= 25,
            "front_p99_ms<=60_eight_clients": fd["eight_clients"]["p99_ms"] <= 60,
            "front_added_p99_ms<=5": fd["added_p99_ms"] <= 5,
            "front_0_errors": all(
                fd[k]["errors"] == 0
                for k in ("single_client_50rps", "eight_clients", "during_releases_and_crash")
            ),
        },
    }


def bench_pairs(n: int) -> list[str]:
    """``n`` pairs: the configured two, then made-up ones (the sample source makes up
    candles for any pair)."""
    known = ["BTC/USDT", "ETH/USDT", "BNB/USDT", "SOL/USDT"]
    return (known + [f"X{i:02d}/USDT" for i in range(n)])[:n]


def scaling(gran: str, counts: tuple[int, ...]) -> dict:
    """The pipeline on 2 ... 32 pairs of sample data, each in a fresh home, against the
    same work as plain sequential functions."""
    res: dict = {}
    for n in counts:
        pairs = bench_pairs(n)
        print(f"bench: scaling, {n} pairs: plain functions, then the pipeline ...", flush=True)
        flat = plain_run(gran, pairs)
        home, env, _ = fresh_home(gran)
        try:
            timed([CLI, "setup"], env)
            run = train_timed(gran, env, pairs)
        finally:
            cleanup(gran, env, home)
        res[str(n)] = {
            "pipeline": run,
            "plain": flat,
            "ratio_pipeline_vs_plain": round(run["wall_s"] / flat["wall_s"], 2),
        }
    walls = {int(n): r["pipeline"]["wall_s"] for n, r in res.items()}
    lo, hi = min(walls), max(walls)
    res["marginal_s_per_pair"] = round((walls[hi] - walls[lo]) / (hi - lo), 2)
    return res


def scaling_section(gran: str) -> dict:
    res = scaling(gran, (2, 8, 16, 32))
    res["goals"] = {
        "marginal_s_per_pair<=0.8": res["marginal_s_per_pair"] <= 0.8,
        "16_pairs_s<=45": res["16"]["pipeline"]["wall_s"] <= 45,
        "32_pairs_ratio_vs_plain<=1.2": res["32"]["ratio_pipeline_vs_plain"] <= 1.2,
    }
    return res


@contextlib.contextmanager
def busy_process(on: bool):
    """One process spinning on a core (another user of the machine) while inside."""
    proc = subprocess.Popen([PY, "-c", "while True: pass"]) if on else None
    try:
        yield
    finally:
        if proc:
            proc.kill()
            proc.wait()


def contention(gran: str) -> dict:
    """Fitting and backtesting idle and next to one busy process: with the libraries'
    default threads (before the budget) and with the budget; then the default
    ``cryptocast train`` itself, idle and busy, each in a fresh home."""
    res: dict = {"load_average_before": os.getloadavg()[0]}
    for threads in ("unlimited", "config"):
        for load in ("idle", "busy"):
            print(f"bench: contention, plain, threads {threads}, {load} ...", flush=True)
            with busy_process(load == "busy"):
                r = plain_run(gran, threads=threads)
            res[f"plain_{threads}_{load}"] = {
                "train_evaluate_s": round(r["train_evaluate"], 2),
                "threads": r.get("threads", "library defaults"),
            }
        idle, loaded = (res[f"plain_{threads}_{x}"]["train_evaluate_s"] for x in ("idle", "busy"))
        res[f"plain_{threads}_ratio"] = round(loaded / idle, 2)
    for load in ("idle", "busy"):
        print(f"bench: contention, cryptocast train, {load} ...", flush=True)
        home, env, _ = fresh_home(gran)
        try:
            timed([CLI, "setup"], env)
            with busy_process(load == "busy"):
                run = train_timed(gran, env)
        finally:
            cleanup(gran, env, home)
        res[f"train_{load}"] = {k: run[k] for k in ("wall_s", "cores_used", "steps", "status")}
    res["train_ratio_busy_vs_idle"] = round(
        res["train_busy"]["wall_s"] / res["train_idle"]["wall_s"], 2
    )
    return res


def contention_section(gran: str) -> dict:
    res = contention(gran)
    res["goals"] = {
        "train_busy_vs_idle<=1.5": res["train_ratio_busy_vs_idle"] <= 1.5,
        "train_never_fails": all(
            s == "completed" for x in ("idle", "busy") for s in res[f"train_{x}"]["status"]
        ),
    }
    return res
