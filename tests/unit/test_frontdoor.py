"""The front door without ZenML or MLflow: the router over fake model servers (identity
checks, switching, replacing a dead server, waiting requests) and the FastAPI app
(contract, limits, refusals as 4xx, metrics for every request)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from cryptocast.config import apply_overrides
from cryptocast.serving.frontdoor.app import create_app
from cryptocast.serving.frontdoor.contract import json_depth_exceeds
from cryptocast.serving.frontdoor.router import Identity, Router, UpstreamDown, proves
from tests.conftest import raw_config

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


@pytest.fixture
def world():
    w = FakeWorld()
    w.add("http://a", V1)
    return w


def router_for(world, **kw) -> Router:
    r = Router(world, world.transport, check_interval_s=0.02, restart_wait_s=5, **kw)
    r.check()
    return r


def test_proves_checks_name_version_run_and_pairs():
    good = FakeModelServer(V1).answer(
        {"dataframe_records": [{"pair": p, "horizon": 1} for p in PAIRS]}
    )
    assert proves(good[1]["predictions"], V1) is None
    assert "expected ('m', '2', 'run-2')" in proves(good[1]["predictions"], V2)
    one = [r for r in good[1]["predictions"] if r["pair"] == "BTC/USDT"]
    assert "answered for ['BTC/USDT']" in proves(one, V1)
    assert proves([], V1) == "no predictions"


def test_first_check_switches_to_the_server_that_proves_itself(world):
    r = router_for(world)
    assert r.current.url == "http://a"
    assert r.current.identity == V1


def test_a_server_with_another_identity_is_never_used(world):
    """The port race: the deployer's record points at a port where another model
    answers. That server is never used: the working one stays, or a proper one starts."""
    r = router_for(world)  # serving v1 from http://a
    world.add("http://b", V1)  # v2's record says http://b, but v1 answers there
    world.servers = lambda identity: ["http://b"]
    world.champ = V2
    r.check()
    assert r.current.url == "http://a"  # the working server stays; http://b is not used
    assert "expected ('m', '2', 'run-2')" in r.last_error
    fresh = router_for(world)  # nothing serves yet: a v2 server is started, never http://b
    assert (fresh.current.url, fresh.current.identity) == ("http://replacement-1", V2)


def test_promotion_switches_only_after_the_commit(world):
    r = router_for(world)
    world.add("http://b", V2)  # blue server up, registry still says v1
    r.check()
    assert r.current.identity == V1
    world.champ = V2  # the commit
    r.check()
    assert (r.current.url, r.current.identity) == ("http://b", V2)


def test_restart_of_the_same_version_moves_to_the_newest_server(world):
    r = router_for(world)
    world.add("http://a2", V1)
    r.check()
    assert r.current.url == "http://a2"


def test_a_dead_server_is_replaced_and_waiting_requests_succeed(world):
    events = []

    class Events:
        def switched(self, reason, up):
            events.append(("switched", reason))

        def upstream_died(self, up):
            events.append(("died", up.url))

        def upstream_restarted(self, up):
            events.append(("restarted", up.url))

    r = router_for(world, events=Events())
    world.servers_by_url["http://a"].alive = False
    r.start()
    try:
        up, rows = r.forward([{"pair": "BTC/USDT", "horizon": 2}])
    finally:
        r.stop()
    assert up.url == "http://replacement-1"
    assert len(rows) == 2
    assert ("died", "http://a") in events
    assert ("restarted", "http://replacement-1") in events
    assert list(world.servers_by_url) == ["http://replacement-1"]  # the dead one retired


def test_requests_are_refused_with_the_models_words(world):
    from cryptocast.serving.frontdoor.router import Refused

    r = router_for(world)
    with pytest.raises(Refused, match=r"^unknown pair 'DOGE/USDT'$"):
        r.forward([{"pair": "DOGE/USDT", "horizon": 1}])


def test_no_champion_means_not_ready(world):
    from cryptocast.serving.frontdoor.router import Unavailable

    world.champ = None
    r = router_for(world)
    r.restart_wait_s = 0.2
    with pytest.raises(Unavailable, match="no champion yet"):
        r.forward([{"pair": "BTC/USDT", "horizon": 1}])


@pytest.mark.parametrize(
    ("body", "deep"),
    [
        (b'{"records": [{"pair": "x"}]}', False),
        (b"[" * 9 + b"]" * 9, True),
        (b'{"a": "[[[[[[[[[[[[[["}', False),  # brackets inside a string do not nest
        (b'{"a": "\\"[[[[[[[[[[[[["}', False),  # nor after an escaped quote
    ],
)
def test_json_depth(body, deep):
    assert json_depth_exceeds(body, 8) is deep


# --- the app --------------------------------------------------------------------------


@pytest.fixture
def app_client(world):
    raw = raw_config("hour")
    raw["service"].update(max_body_bytes=4000, max_records=3, max_candles=2)
    cfg = apply_overrides(raw)
    recorded = []
    r = router_for(world)
    app = create_app(cfg, r, record=lambda *a: recorded.append(a), instance="abc")
    with TestClient(app) as client:
        yield client, recorded, world


def test_forecast_mixes_records_with_and_without_horizon(app_client):
    client, recorded, _ = app_client
    resp = client.post(
        "/forecast", json={"records": [{"pair": "BTC/USDT", "horizon": 2}, {"pair": "ETH/USDT"}]}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert (body["model_name"], body["model_version"]) == ("m", "1")
    by_pair = {}
    for f in body["forecasts"]:
        by_pair[f["pair"]] = by_pair.get(f["pair"], 0) + 1
    assert by_pair == {"BTC/USDT": 2, "ETH/USDT": 24}  # omitted horizon: the maximum
    assert recorded[-1][:2] == ("/forecast", 200)


def test_invocations_keeps_the_mlflow_protocol(app_client):
    client, _, _ = app_client
    resp = client.post("/invocations", json={"dataframe_records": [{"pair": "BTC/USDT"}]})
    assert resp.status_code == 200
    rows = resp.json()["predictions"]
    assert len(rows) == 24
    assert rows[0]["model_version"] == "1"


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("kwargs", "error", "says"),
    [
        ({"json": {"records": [{"pair": "BTC/USDT", "horizon": 2.5}]}}, "invalid_request",
         "records[0].horizon: Input should be a valid integer"),
        ({"json": {"records": [{"pair": "BTC/USDT", "horizon": 2**63}]}}, "invalid_request",
         "less than"),
        ({"json": {"records": [{"pair": "BTC/USDT", "horizon": "3"}]}}, "invalid_request",
         "valid integer"),
        ({"json": {"records": [{"pair": "BTC/USDT", "horizon": 0}]}}, "invalid_request",
         "greater than"),
        ({"json": {"records": [{"pair": "BTC/USDT"}] * 4}}, "invalid_request", "at most 3"),
        ({"json": {"records": []}}, "invalid_request", "at least 1"),
        ({"json": {"records": [{"pair": "BTC/USDT", "extra": 1}]}}, "invalid_request",
         "Extra inputs"),
        ({"json": {"records": [{"pair": "DOGE/USDT"}]}}, "unknown_pair",
         "records[0].pair: unknown pair 'DOGE/USDT'; v1 serves BTC/USDT, ETH/USDT"),
        ({"content": b'{"records": [{"pair": "BTC/USDT"}]}'}, "not_json", "Content-Type"),
        ({"content": b"x" * 5000, "headers": JSON}, "too_large", "exceeds the limit of 4000"),
        ({"content": b"[" * 20 + b"]" * 20, "headers": JSON}, "too_deep", "nested deeper than 8"),
        # what once made the server answer 500 (100,000 levels)
        ({"content": b"[" * 1900 + b"]" * 1900, "headers": JSON}, "too_deep", "deeper than 8"),
        ({"content": b"{not json", "headers": JSON}, "malformed_json", "not valid JSON"),
        # NaN and Infinity once made the error body unencodable: HTTP 500
        ({"content": b'{"records": [{"pair": "BTC/USDT", "horizon": NaN}]}', "headers": JSON},
         "invalid_request", "(got nan)"),
        ({"content": b'{"records": [{"pair": "BTC/USDT", "horizon": Infinity}]}',
          "headers": JSON}, "invalid_request", "(got inf)"),
        ({"content": b'{"records": [{"pair": "BTC/USDT", "candles": [{"timestamp": '
                     b'"2024-01-01T00:00:00Z", "open": 1, "high": 1, "low": 1, "close": 1e309, '
                     b'"volume": 1}]}]}', "headers": JSON},
         "invalid_request", "records[0].candles[0].close: Input should be a finite number"),
    ],
    ids=[
        "fractional-horizon",
        "huge-horizon",
        "string-horizon",
        "zero-horizon",
        "too-many-records",
        "no-records",
        "unknown-field",
        "unknown-pair",
        "no-content-type",
        "body-too-large",
        "too-deep",
        "very-deep",
        "not-json",
        "nan-horizon",
        "infinite-horizon",
        "overflowing-close",
    ],
)  # fmt: skip
@pytest.mark.parametrize("route", ["/forecast", "/invocations"])
def test_every_request_error_is_a_400_in_one_shape(app_client, kwargs, error, says, route):
    client, recorded, world = app_client
    before = world.servers_by_url["http://a"].calls
    if route == "/invocations" and "json" in kwargs:
        kwargs = {"json": {"dataframe_records": kwargs["json"]["records"]}}
    elif route == "/invocations":
        kwargs = kwargs | {
            "content": kwargs["content"].replace(b'"records"', b'"dataframe_records"')
        }
    resp = client.post(route, **kwargs)
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == error
    assert (
        says.replace("records[", "dataframe_records[" if route != "/forecast" else "records[")
        in body["detail"]
    )
    assert recorded[-1][:2] == (route, 400)  # counted, even when refused early
    assert world.servers_by_url["http://a"].calls == before  # never reached the model


def test_other_http_errors_have_the_same_shape(app_client):
    client, _, _ = app_client
    resp = client.get("/forecast")
    assert resp.status_code == 405
    assert resp.headers["allow"] == "POST"  # RFC 9110
    assert resp.json() == {
        "error": "method_not_allowed",
        "detail": "GET /forecast: Method Not Allowed",
    }
    assert client.get("/nothing").json()["error"] == "not_found"


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": ["pair", "horizon"], "data": [["BTC/USDT", 2]],
                             "index": [0]}},
        {"dataframe_split": {"columns": ["pair", "horizon"], "data": [["BTC/USDT", 2.0]]}},
        {"instances": [{"pair": "BTC/USDT", "horizon": 2}]},
        {"inputs": [{"pair": "BTC/USDT", "horizon": 2}]},
        {"inputs": {"pair": ["BTC/USDT"], "horizon": [2]}},
        {"dataframe_records": [{"pair": "BTC/USDT", "horizon": 2}], "params": {}},
    ],
    ids=["split", "split-float-horizon", "instances", "inputs-records", "inputs-columns", "params"],
)  # fmt: skip
def test_invocations_take_every_mlflow_input_format(app_client, body):
    client, _, _ = app_client
    resp = client.post("/invocations", json=body)
    assert resp.status_code == 200, resp.text
    assert [r["step"] for r in resp.json()["predictions"]] == [1, 2]
    assert client.get("/ping").status_code == 200
    two = client.post("/invocations", json={**body, "instances": [{"pair": "BTC/USDT"}]})
    if "instances" not in body:
        assert two.status_code == 400
        assert "exactly one of" in two.json()["detail"]


def test_health_ready_version_and_openapi(app_client):
    client, _, _ = app_client
    assert client.get("/health").json() == {"status": "ok", "instance": "abc"}
    ready = client.get("/ready").json()
    assert (ready["model_version"], ready["run_id"], ready["upstream"]) == (
        "1",
        "run-1",
        "http://a",
    )
    spec = client.get("/openapi.json").json()
    query = spec["components"]["schemas"]["ForecastQuery"]["properties"]
    assert query["horizon"]["anyOf"][0]["maximum"] == 24
    assert {"/forecast", "/invocations", "/health", "/ready", "/version"} <= set(spec["paths"])
    docs = client.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text  # works offline: Swagger UI's files come from the package
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        assert f"/static/swagger-ui/{asset}" in docs.text
        served = client.get(f"/static/swagger-ui/{asset}")
        assert served.status_code == 200
        assert len(served.content) > 10_000


def test_not_ready_without_a_champion(world):
    world.champ = None
    cfg = apply_overrides(raw_config("hour"))
    with TestClient(create_app(cfg, router_for(world))) as client:
        resp = client.get("/ready")
    assert resp.status_code == 503
    assert resp.json()["error"] == "unavailable"
    assert "no champion" in resp.json()["detail"]


def test_requests_wait_through_a_switch(world):
    """Many requests while the champion changes: all answered, versions never go back."""
    r = router_for(world)
    r.start()
    seen, errors = [], []

    def hammer():
        for _ in range(200):
            try:
                up, _ = r.forward([{"pair": "BTC/USDT", "horizon": 1}])
                seen.append(up.identity.version)
            except Exception as exc:
                errors.append(exc)

    t = threading.Thread(target=hammer)
    t.start()
    time.sleep(0.01)
    world.add("http://b", V2)
    world.champ = V2
    t.join()
    r.stop()
    assert errors == []
    assert seen == sorted(seen)  # 1...1 2...2


def test_the_client_says_what_a_refused_request_got_wrong(app_client):
    """FastAPI's validation list reached `make predict` as a raw Python list."""
    from cryptocast.serving.client import ClientError, ForecastClient

    client, _, _ = app_client
    fc = ForecastClient("http://testserver")
    fc._session = client  # the app in this process, through the client's own code
    with pytest.raises(ClientError) as refused:
        fc.forecast([{"pair": "BTC/USDT", "horizon": 99}])
    assert refused.value.status == 400
    assert str(refused.value).endswith(
        "/forecast: records[0].horizon: Input should be less than or equal to 24 (got 99)"
    )
