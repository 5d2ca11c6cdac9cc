"""The front door's FastAPI app without ZenML or MLflow, over the router and fake model
servers: the contract, limits, refusals as 4xx in one shape, metrics for every request,
and its start (a failed start, a taken port)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from cryptocast.runconfig import apply_overrides
from cryptocast.serving.frontdoor.app import create_app
from cryptocast.serving.frontdoor.contract import json_depth_exceeds
from tests.conftest import raw_config
from tests.unit.frontdoor_fakes import FakeWorld, new_world, router_for


@pytest.fixture
def world() -> FakeWorld:
    return new_world()


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
