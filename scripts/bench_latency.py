"""Latency of the model server and the front door: open-loop load, closed-loop clients,
a poller that sees which version answers when, and the front door next to the model
server (what it adds, and failed requests through releases and a crash)."""

from __future__ import annotations

import time

from scripts.bench_common import (
    CLI,
    kill,
    latency_summary,
    requests_json,
    server_pids,
    timed,
    wait_replaced,
)


def load_test(url: str, payload: dict, rps: float, seconds: float) -> dict:
    """Open-loop load: request i is sent at t0 + i/rps whatever the previous ones did."""
    import concurrent.futures as cf

    import requests

    session = requests.Session()

    def one(at: float) -> tuple[float, bool]:
        time.sleep(max(0.0, at - time.perf_counter()))
        t0 = time.perf_counter()
        try:
            ok = session.post(url, json=payload, timeout=10).status_code == 200
        except requests.RequestException:
            ok = False
        return time.perf_counter() - t0, ok

    n = int(rps * seconds)
    start = time.perf_counter() + 0.5
    with cf.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, [start + i / rps for i in range(n)]))
    return latency_summary(
        [r[0] for r in results], sum(not r[1] for r in results), rps=rps, seconds=seconds
    )


class Clients:
    """``n`` closed-loop clients calling ``url`` back to back until stopped."""

    def __init__(self, url: str, payload: dict, n: int) -> None:
        import threading

        self.url, self.payload, self.done = url, payload, threading.Event()
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.versions: list[tuple[float, str]] = []  # (sent, answering version)
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def _run(self) -> None:
        import requests

        session = requests.Session()
        while not self.done.is_set():
            t0, sent = time.perf_counter(), time.time()
            try:
                resp = session.post(self.url, json=self.payload, timeout=90)
                if resp.status_code == 200:
                    self.versions.append((sent, resp.json().get("model_version", "")))
                else:
                    self.errors.append(f"HTTP {resp.status_code}")
            except requests.RequestException as exc:
                self.errors.append(type(exc).__name__)
            self.latencies.append(time.perf_counter() - t0)

    def __enter__(self) -> Clients:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        for t in self.threads:
            t.join(timeout=120)

    def summary(self, **info) -> dict:
        return latency_summary(self.latencies, len(self.errors), **info)


class Poller:
    """One client asking ``url`` every ``every_s`` seconds in the background: when each
    answer came and from which version (or that it failed)."""

    def __init__(self, url: str, payload: dict, every_s: float = 0.05) -> None:
        import threading

        self.url, self.payload, self.every_s = url, payload, every_s
        # (sent, received, version or None)
        self.answers: list[tuple[float, float, str | None]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import requests

        session = requests.Session()
        while not self.done.is_set():
            sent = time.perf_counter()
            try:
                resp = session.post(self.url, json=self.payload, timeout=90)
                version = resp.json().get("model_version") if resp.status_code == 200 else None
            except requests.RequestException:
                version = None
            self.answers.append((sent, time.perf_counter(), version))
            time.sleep(self.every_s)

    def __enter__(self) -> Poller:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join(timeout=120)

    def first(self, after: float, version: str | None = None) -> float | None:
        """When the first answer (of ``version``, if given) to a request sent after
        ``after`` came."""
        return next(
            (
                got
                for sent, got, v in self.answers
                if sent > after and v and (version is None or v == version)
            ),
            None,
        )

    def failed(self) -> int:
        return sum(1 for *_, v in self.answers if v is None)


def paired_latency(front: str, direct: str, horizon: int, rps: float, seconds: float) -> dict:
    """Open-loop load alternating between the front door and the model server directly,
    request by request in one run (so a stall of the machine hits both alike)."""
    import concurrent.futures as cf

    import requests

    session = requests.Session()
    bodies = {
        "front": (f"{front}/forecast", {"records": [{"pair": "BTC/USDT", "horizon": horizon}]}),
        "direct": (direct, {"dataframe_records": [{"pair": "BTC/USDT", "horizon": horizon}]}),
    }

    def one(arg: tuple[float, str]) -> tuple[str, float, bool]:
        at, target = arg
        time.sleep(max(0.0, at - time.perf_counter()))
        url, body = bodies[target]
        t0 = time.perf_counter()
        try:
            ok = session.post(url, json=body, timeout=10).status_code == 200
        except requests.RequestException:
            ok = False
        return target, time.perf_counter() - t0, ok

    n = int(rps * seconds)
    start = time.perf_counter() + 0.5
    plan = [(start + i / rps, "front" if i % 2 == 0 else "direct") for i in range(n)]
    with cf.ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(one, plan))
    out = {
        t: latency_summary(
            [r[1] for r in results if r[0] == t],
            sum(not r[2] for r in results if r[0] == t),
            rps=rps / 2,
            seconds=seconds,
        )
        for t in ("front", "direct")
    }
    out["added_p50_ms"] = round(out["front"]["p50_ms"] - out["direct"]["p50_ms"], 2)
    return out


def front_door(gran: str, env: dict, run: dict, model_url: str) -> dict:
    """The front door: latency alone and with 8 clients, what it adds to a direct call to
    the model server, and failed requests while releases and a crash happen."""

    cfg = run["parameters"]["config"]
    front = f"http://{cfg['service']['host']}:{cfg['service']['port']}"
    body = {"records": [{"pair": "BTC/USDT", "horizon": cfg["horizon"]}]}
    direct = {"dataframe_records": [{"pair": "BTC/USDT", "horizon": cfg["horizon"]}]}
    out: dict = {}
    print(f"bench: front door {front}: 50 req/s for 20 s, then 8 clients ...", flush=True)
    out["single_client_50rps"] = load_test(f"{front}/forecast", body, rps=50, seconds=20)
    out["direct_50rps"] = load_test(model_url, direct, rps=50, seconds=20)
    out["front_invocations_50rps"] = load_test(f"{front}/invocations", direct, rps=50, seconds=20)
    out["added_p99_ms"] = round(
        out["front_invocations_50rps"]["p99_ms"] - out["direct_50rps"]["p99_ms"], 2
    )
    with Clients(f"{front}/forecast", body, 8) as clients:
        time.sleep(20)
    out["eight_clients"] = clients.summary(clients=8, seconds=20)
    print("bench: failed requests during promote, rollback, a killed model server ...")
    with Clients(f"{front}/forecast", body, 2) as during:
        more = " ".join([*cfg["pairs"], "BNB/USDT"])  # a new pair: promoted
        timed([CLI, "train", "--gran", gran, "--pairs", more], env)
        timed([CLI, "rollback", "--gran", gran], env)
        timed([CLI, "rollback", "--gran", gran], env)
        info = requests_json(f"{front}/version")
        victim = info["upstream"]
        kill(server_pids(env, gran, victim))
        wait_replaced(front, victim)
        time.sleep(2)
    out["during_releases_and_crash"] = during.summary(
        clients=2, events=["promote", "rollback", "rollback", "kill model server"]
    )
    ordered = [v for _, v in sorted(during.versions)]  # by the time each request was sent
    versions = [v for i, v in enumerate(ordered) if i == 0 or ordered[i - 1] != v]
    out["during_releases_and_crash"]["answering_versions"] = versions
    return out
