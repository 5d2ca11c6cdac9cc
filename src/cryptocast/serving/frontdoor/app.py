"""The front door's FastAPI application: typed routes, OpenAPI at ``/openapi.json``, docs
at ``/docs``, and a guard in front of every route that refuses oversized, non-JSON and
over-nested bodies before anything parses them and counts every request (malformed ones
too) for Prometheus.

No ``from __future__ import annotations`` here: FastAPI must see the request models built
from the config as real annotations, not as strings."""

import time
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from swagger_ui_bundle import swagger_ui_path

from cryptocast.config import Settings
from cryptocast.serving.frontdoor.contract import (
    ForecastResponse,
    Health,
    InvocationsResponse,
    ModelCard,
    Problem,
    VersionInfo,
    describe_errors,
    json_depth_exceeds,
    request_models,
    upstream_records,
)
from cryptocast.serving.frontdoor.router import (
    Refused,
    Router,
    Unavailable,
    Upstream,
    UpstreamFailed,
)

# Every request error is a 400 with a Problem body ({"error": code, "detail": sentence}):
# malformed or non-JSON bodies, wrong types, limits, unknown pairs, bad horizons.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "description": "The request is refused: `error` says why."},
    502: {"model": Problem, "description": "The model server failed."},
    503: {"model": Problem, "description": "No champion server answered in time."},
}
BODY_ROUTES = ("/forecast", "/invocations")


def _problem(
    status: int, error: str, detail: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = Problem(error=error, detail=detail).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


def _slug(phrase: str) -> str:
    return "_".join(phrase.lower().split())


class Guard:
    """ASGI middleware: limits on the body, JSON only, and a metric for every request."""

    def __init__(self, app, cfg: Settings, record: Callable[[str, int, float], None] | None):
        self.app, self.limits, self.record = app, cfg.service, record

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]
        path = scope["path"]

        async def send_and_see(message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            refusal = None
            if scope["method"] == "POST" and path in BODY_ROUTES:
                refusal, receive = await self._checked_body(scope, receive)
            if refusal is not None:
                await refusal(scope, receive, send_and_see)
            else:
                await self.app(scope, receive, send_and_see)
        finally:
            if self.record is not None:
                known = path if path in (*BODY_ROUTES, "/health", "/ready", "/version") else "other"
                self.record(known, status[0], time.perf_counter() - start)

    async def _checked_body(self, scope, receive):
        headers = dict(scope["headers"])
        ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if ctype != b"application/json":
            shown = ctype.decode("latin-1") or "none"
            why = f"send JSON with Content-Type: application/json (got {shown})"
            return _problem(400, "not_json", why), receive
        limit = self.limits.max_body_bytes
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            why = f"body of {int(declared)} bytes exceeds the limit of {limit}"
            return _problem(400, "too_large", why), receive
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > limit:
                return _problem(
                    400, "too_large", f"body exceeds the limit of {limit} bytes"
                ), receive
            if not message.get("more_body"):
                break
        if json_depth_exceeds(body, self.limits.max_depth):
            why = f"JSON nested deeper than {self.limits.max_depth} levels"
            return _problem(400, "too_deep", why), receive
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return None, replay


class UnknownPair(Exception):
    """A record names a pair the current champion does not serve."""


def _without_422(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """The OpenAPI document without FastAPI's automatic 422 responses: request errors
    are 400s here (ERRORS)."""
    default = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = default()
            for item in spec.get("paths", {}).values():
                for operation in item.values():
                    operation.get("responses", {}).pop("422", None)
            schemas = spec.get("components", {}).get("schemas", {})
            for unused in ("HTTPValidationError", "ValidationError"):
                schemas.pop(unused, None)
        return app.openapi_schema

    return openapi


def create_app(
    cfg: Settings,
    router: Router,
    *,
    record: Callable[[str, int, float], None] | None = None,
    trained: Callable[[Upstream], dict[str, Any]] | None = None,
    card: Callable[[Upstream], dict[str, Any]] | None = None,
    instance: str | None = None,
) -> FastAPI:
    """The front door of ``cfg``'s granularity over ``router``. ``record(route, code,
    seconds)`` counts each request; ``trained(upstream)`` says what its model was trained
    on (for ``/version``); ``card(upstream)`` describes its model (``/model``);
    ``instance`` is echoed by ``/health`` (which process this is)."""
    forecast_request, invocations_request = request_models(cfg)
    app = FastAPI(
        docs_url=None,  # served below from local files: FastAPI's default page needs a CDN
        redoc_url=None,
        title=f"cryptocast forecasts ({cfg.granularity})",
        version="1",
        description=(
            f"The stable address of the {cfg.granularity} champion. Every answer comes from "
            "the registered champion's model server, after that server proved its identity. "
            f"Pairs: {', '.join(cfg.pairs)} (as configured; the model says which it serves); "
            f"horizon 1 to {cfg.horizon}."
        ),
    )
    app.add_middleware(Guard, cfg=cfg, record=record)

    def version_info(up: Upstream | None) -> VersionInfo:
        if up is None:
            return VersionInfo(granularity=cfg.granularity)
        ident = up.identity
        return VersionInfo(
            granularity=cfg.granularity,
            model_name=ident.model_name,
            model_version=ident.version,
            run_id=ident.run_id,
            serving_since=up.since,
            upstream=up.url,
            pairs=list(ident.pairs),
            trained=trained(up) if trained else {},
        )

    def serving() -> Upstream:
        """The server answering now; 503 (through ``Unavailable``) if none is yet."""
        if router.current is None:
            raise Unavailable(router.last_error or "no champion server yet")
        return router.current

    def ask(records, field: str) -> tuple[Upstream, list[dict[str, Any]]]:
        current = router.current
        if current is not None and current.identity.pairs:
            served = current.identity.pairs
            for i, r in enumerate(records):
                if r.pair not in served:
                    raise UnknownPair(
                        f"{field}[{i}].pair: unknown pair {r.pair!r}; v{current.identity.version}"
                        f" serves {', '.join(served)}"
                    )
        return router.forward(upstream_records(records, cfg.horizon))

    @app.exception_handler(UnknownPair)
    def _unknown(_, exc: UnknownPair) -> JSONResponse:
        return _problem(400, "unknown_pair", str(exc))

    @app.exception_handler(Refused)
    def _refused(_, exc: Refused) -> JSONResponse:
        return _problem(400, "refused", str(exc))

    @app.exception_handler(RequestValidationError)
    def _invalid(_, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        bad_json = [e for e in errors if e.get("type") == "json_invalid"]
        if bad_json:
            e = bad_json[0]
            where = e.get("ctx", {}).get("error", e.get("msg", ""))
            return _problem(400, "malformed_json", f"the body is not valid JSON: {where}")
        return _problem(400, "invalid_request", describe_errors(errors))

    @app.exception_handler(StarletteHTTPException)
    def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = f"{request.method} {request.url.path}: {exc.detail}"
        return _problem(exc.status_code, _slug(str(exc.detail)), detail, exc.headers)

    @app.exception_handler(Unavailable)
    def _unavailable(_, exc: Unavailable) -> JSONResponse:
        return _problem(503, "unavailable", f"no champion server answered: {exc}")

    @app.exception_handler(UpstreamFailed)
    def _failed(_, exc: UpstreamFailed) -> JSONResponse:
        return _problem(502, "upstream_failed", str(exc))

    app.mount("/static/swagger-ui", StaticFiles(directory=swagger_ui_path), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title=f"{app.title}: API",
            swagger_js_url="/static/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger-ui/swagger-ui.css",
            swagger_favicon_url="/static/swagger-ui/favicon-32x32.png",
        )

    @app.get("/health", response_model=Health, summary="The front door process is up.")
    def health() -> Health:
        return Health(status="ok", instance=instance)

    @app.get("/ping", response_model=Health, summary="MLflow's liveness check (as /health).")
    def ping() -> Health:
        return Health(status="ok", instance=instance)

    @app.get(
        "/ready",
        response_model=VersionInfo,
        responses={503: ERRORS[503]},
        summary="A champion server has proved itself and answers.",
    )
    def ready() -> VersionInfo:
        return version_info(serving())

    @app.get("/version", response_model=VersionInfo, summary="What is served, since when.")
    def version() -> VersionInfo:
        return version_info(router.current)

    @app.get(
        "/model",
        response_model=ModelCard,
        responses={503: ERRORS[503]},
        summary="The champion's backtest, live accuracy, recent closes and promotions.",
    )
    def model() -> ModelCard:
        up = serving()
        return ModelCard(
            model_name=up.identity.model_name,
            model_version=up.identity.version,
            **(card(up) if card else {}),
        )

    @app.post(
        "/forecast",
        response_model=ForecastResponse,
        responses=ERRORS,
        summary="Forecasts of the champion, with interval bounds.",
    )
    def forecast(body: forecast_request) -> ForecastResponse:  # type: ignore[valid-type]
        up, rows = ask(body.records, "records")
        return ForecastResponse(
            model_name=up.identity.model_name, model_version=up.identity.version, forecasts=rows
        )

    @app.post(
        "/invocations",
        response_model=InvocationsResponse,
        responses=ERRORS,
        summary="MLflow's scoring protocol, for clients of the model servers.",
        description="Any input format of MLflow's scoring server: `dataframe_records`, "
        "`dataframe_split` (what `mlflow.pyfunc`'s ScoringServerClient sends), `instances` "
        "or `inputs`; every record as in /forecast (`pair`, optional `horizon`, `candles`).",
    )
    def invocations(body: invocations_request) -> InvocationsResponse:  # type: ignore[valid-type]
        _, rows = ask(body.dataframe_records, "dataframe_records")
        return InvocationsResponse(predictions=rows)

    app.openapi = _without_422(app)  # type: ignore[method-assign]
    return app
