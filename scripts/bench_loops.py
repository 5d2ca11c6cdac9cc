"""The `loops` section of `make bench`: what a user waits on, each against its goal."""

from __future__ import annotations

import json
import time

from scripts.bench_common import (
    CLI,
    PY,
    cleanup,
    fresh_home,
    kill,
    requests_json,
    server_pids,
    timed,
    wait_replaced,
)
from scripts.bench_latency import Poller, paired_latency

SERVER_START = """
import json, sys, time
import infra
from infra import deployer
from cryptocast.delivery import registry
from cryptocast.runconfig import load_settings
from cryptocast.paths import granularity_config
from infra.stack import configure_mlflow
configure_mlflow()
name = load_settings(granularity_config(sys.argv[1])).deploy.model_name
version = registry.alias_version(name)
t0 = time.perf_counter()
svc = deployer.start(model_name=name, version=version, pairs=registry.version_pairs(name, version),
                     timeout_s=120, reuse=False)
ready = time.perf_counter() - t0
deployer.delete(svc)
print("BENCH" + json.dumps({"start_to_ready_s": round(ready, 2)}))
"""


def _cli_median(env: dict, *args: str, n: int = 3) -> float:
    walls = sorted(timed([CLI, *args], env)[0] for _ in range(n))
    return round(walls[n // 2], 2)


def loops(gran: str) -> dict:
    """The loops a user waits on, in a fresh home: `--help`, the first and the second
    `cryptocast train` (setup included, as `make train` runs it), CLI calls that run no
    pipeline, a model server's start, a killed server replaced behind the front door, a
    promotion answering at the front door, and latency through the front door next to the
    model server directly (alternating requests, three runs; the first right after a
    release)."""
    home, env, run = fresh_home(gran)
    cfg = run["parameters"]["config"]
    front = f"http://{cfg['service']['host']}:{cfg['service']['port']}"
    res: dict = {}
    try:
        res["help_s"] = _cli_median(env, "--help")
        print(f"bench: loops ({gran}): first and second train ...", flush=True)
        # as the quick start runs it: DATA=auto (offline: the sample fallback)
        for label in ("first_train_s", "second_train_s"):
            res[label] = round(timed([CLI, "train", "--gran", gran], env)[0], 2)
        res["status_s"] = _cli_median(env, "status")
        res["versions_s"] = _cli_median(env, "versions", "--gran", gran)
        res["predict_s"] = _cli_median(env, "predict", "--gran", gran)
        _, out = timed([PY, "-c", SERVER_START, gran], env)
        res |= json.loads(out.split("BENCH", 1)[1].splitlines()[0])
        horizon = cfg["horizon"]
        print("bench: loops: latency right after a release, then a killed server ...", flush=True)
        model_url = requests_json(f"{front}/version")["upstream"]
        res["latency"] = [paired_latency(front, model_url, horizon, rps=50, seconds=20)]
        payload = {"records": [{"pair": "BTC/USDT", "horizon": 1}]}
        with Poller(f"{front}/forecast", payload) as poll:
            time.sleep(1)
            pids = server_pids(env, gran, model_url)  # first: finding them takes seconds
            killed = time.perf_counter()
            kill(pids)
            wait_replaced(front, model_url)
            time.sleep(1)
        # a request sent after the kill waits (restart_wait_s) for the replacement
        back = poll.first(killed)
        res["killed_server_to_answering_s"] = round(back - killed, 2) if back else None
        res["killed_server_failed_requests"] = poll.failed()
        print("bench: loops: a second version, then promote -> answering ...", flush=True)
        more = " ".join([*cfg["pairs"], "BNB/USDT"])
        timed([CLI, "train", "--gran", gran, "--data", "sample", "--pairs", more], env)
        with Poller(f"{front}/forecast", payload) as poll:
            started = time.perf_counter()
            timed([CLI, "promote", "--gran", gran, "--version", "1"], env)
            time.sleep(0.5)
        at = poll.first(started, "1")
        res["promote_to_answering_s"] = round(at - started, 2) if at else None
        res["promote_failed_requests"] = poll.failed()
        model_url = requests_json(f"{front}/version")["upstream"]
        for _ in range(2):
            res["latency"].append(paired_latency(front, model_url, horizon, rps=50, seconds=20))
    finally:
        cleanup(gran, env, home)
    lat = res["latency"]
    res["goals"] = {
        "help_s<=1": res["help_s"] <= 1,
        "first_train_s<=30": res["first_train_s"] <= 30,
        "second_train_s<=12": res["second_train_s"] <= 12,
        "cli_s<=3": max(res["status_s"], res["versions_s"], res["predict_s"]) <= 3,
        "server_start_to_ready_s<=6": res["start_to_ready_s"] <= 6,
        "killed_server_to_answering_s<=8": (res["killed_server_to_answering_s"] or 1e9) <= 8,
        "promote_to_answering_s<=8": (res["promote_to_answering_s"] or 1e9) <= 8,
        "front_p99_ms<=25_every_run": all(r["front"]["p99_ms"] <= 25 for r in lat),
        "front_max_ms<=100_every_run": all(r["front"]["max_ms"] <= 100 for r in lat),
        "front_added_p50_ms<=2_every_run": all(r["added_p50_ms"] <= 2 for r in lat),
        "0_failed_requests": res["killed_server_failed_requests"] == 0
        and res["promote_failed_requests"] == 0
        and all(r[t]["errors"] == 0 for r in lat for t in ("front", "direct")),
    }
    return res
