"""Fakes of the front door's world for its unit tests (no ZenML, no MLflow): model servers
that answer as MLflow's would, the registry's champion and the running servers."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptocast.serving.frontdoor.router import Identity, Router, UpstreamDown

PAIRS = ("BTC/USDT", "ETH/USDT")
V1 = Identity("m", "1", "run-1", PAIRS)
V2 = Identity("m", "2", "run-2", PAIRS)


@dataclass
class FakeModelServer:
    identity: Identity
    alive: bool = True
    calls: int = 0

    def answer(self, payload):
        if not self.alive:
            raise UpstreamDown("connection refused")
        self.calls += 1
        rows = []
        for r in payload["dataframe_records"]:
            if r["pair"] not in self.identity.pairs:
                return 400, {"message": f"Failed to predict. Error: unknown pair {r['pair']!r}"}
            rows += [
                {
                    "pair": r["pair"],
                    "origin": "2026-01-01T00:00:00Z",
                    "target_time": f"2026-01-01T{k:02d}:00:00Z",
                    "step": k,
                    "forecast": 1.0,
                    "lower": 0.5,
                    "upper": 1.5,
                    "model_version": self.identity.version,
                    "model_name": self.identity.model_name,
                    "run_id": self.identity.run_id,
                }
                for k in range(1, r["horizon"] + 1)
            ]
        return 200, {"predictions": rows}


@dataclass
class FakeWorld:
    """The registry's champion and the running servers, by URL (newest first)."""

    champ: Identity | None = V1
    servers_by_url: dict[str, FakeModelServer] = field(default_factory=dict)
    replaced: int = 0

    def add(self, url: str, identity: Identity) -> FakeModelServer:
        server = FakeModelServer(identity)
        self.servers_by_url = {url: server, **self.servers_by_url}
        return server

    def transport(self, url, payload, timeout_s):
        if url not in self.servers_by_url:
            raise UpstreamDown("connection refused")
        return self.servers_by_url[url].answer(payload)

    # Champions
    def champion(self):
        return self.champ

    def servers(self, identity):
        return [u for u, s in self.servers_by_url.items() if s.identity == identity and s.alive]

    def replace(self, identity):
        self.replaced += 1
        url = f"http://replacement-{self.replaced}"
        self.add(url, identity)
        return url

    def retire_others(self, identity, keep_url):
        self.servers_by_url = {u: s for u, s in self.servers_by_url.items() if u == keep_url}


def new_world() -> FakeWorld:
    """A world whose champion V1 runs at http://a."""
    w = FakeWorld()
    w.add("http://a", V1)
    return w


def router_for(world, **kw) -> Router:
    r = Router(world, world.transport, check_interval_s=0.02, restart_wait_s=5, **kw)
    r.check()
    return r
