"""The stack's servers: MLflow's tracking server and the ZenML server with its API key."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from infra.prodstack.common import (
    START_TIMEOUT_S,
    Context,
    check_port_free,
    http_ok,
    process,
    start,
)
from infra.prodstack.databases import pg_env
from infra.remotestack import (
    API_KEY,
    MLFLOW_BUCKET,
    ZENML_ADMIN,
    ZENML_SERVICE_ACCOUNT,
    StackError,
    mask_secrets,
    mlflow_auth_ini,
    mlflow_backend_uri,
    s3_env,
    write_credentials,
    zenml_store_url,
)

# ------------------------------------------------------------------ MLflow


def _mlflow_auth_config(ctx: Context) -> Path:
    data = ctx.layout.data("mlflow")
    data.mkdir(parents=True, exist_ok=True)
    path = data / "basic_auth.ini"
    path.write_text(mlflow_auth_ini(data / "auth.db"))
    return path


def start_mlflow(ctx: Context) -> None:
    check_port_free(ctx.ports.mlflow, "mlflow")
    env = {
        **pg_env(ctx),
        **s3_env(ctx.endpoints, ctx.creds),
        "MLFLOW_LOGGING_LEVEL": "WARNING",
        # no job runner (about ten huey consumers for GenAI evaluation jobs we do not use)
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        # basic authentication: users in the stack's SQLite file, the admin's password
        # from the credentials (read once, when the user store is created)
        "MLFLOW_AUTH_CONFIG_PATH": str(_mlflow_auth_config(ctx)),
        "MLFLOW_AUTH_ADMIN_PASSWORD": ctx.creds["MLFLOW_ADMIN_PASSWORD"],
        "MLFLOW_FLASK_SERVER_SECRET_KEY": ctx.creds["MLFLOW_FLASK_SECRET_KEY"],
    }
    argv = [
        ctx.bins["mlflow"],
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(ctx.ports.mlflow),
        # one process: uvicorn's supervisor of several kills a worker that answers
        # its ping late, which the first start (schema migrations) does on 2 cores
        "--workers",
        "1",
        "--backend-store-uri",
        mlflow_backend_uri(ctx.ports),  # no password: PGPASSWORD
        "--app-name",
        "basic-auth",
        "--serve-artifacts",
        "--artifacts-destination",
        f"s3://{MLFLOW_BUCKET}/artifacts",
    ]
    start(
        ctx,
        "MLflow",
        process(ctx.layout, "mlflow", argv, env, ctx.creds),
        lambda: http_ok(f"{ctx.endpoints.mlflow_url}/health", b"OK"),
    )


# ------------------------------------------------------------------ ZenML


def _zenml_env(ctx: Context) -> dict[str, str]:
    home = ctx.layout.data("zenml-server")
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_")}
    return env | {
        "ZENML_CONFIG_PATH": str(home),
        "ZENML_ANALYTICS_OPT_IN": "false",
        "ZENML_SERVER": "true",
        "ZENML_SERVER_DEPLOYMENT_TYPE": "other",
        "ZENML_SERVER_AUTO_ACTIVATE": "true",
        "ZENML_SERVER_JWT_SECRET_KEY": ctx.creds["ZENML_JWT_SECRET_KEY"],
        "ZENML_DEFAULT_USER_NAME": ZENML_ADMIN,
        "ZENML_DEFAULT_USER_PASSWORD": ctx.creds["ZENML_ADMIN_PASSWORD"],
        "ZENML_STORE_URL": zenml_store_url(ctx.ports),
        "ZENML_STORE_PASSWORD": ctx.creds["ZENML_DB_PASSWORD"],
        "ZENML_SECRETS_STORE_TYPE": "sql",
        "ZENML_SECRETS_STORE_ENCRYPTION_KEY": ctx.creds["ZENML_SECRETS_ENCRYPTION_KEY"],
        "ZENML_LOGGING_COLORS_DISABLED": "true",
    }


def start_zenml(ctx: Context) -> None:
    check_port_free(ctx.ports.zenml, "zenml")
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "zenml.zen_server.zen_server_api:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(ctx.ports.zenml),
        "--log-level",
        "warning",
        "--no-server-header",
    ]
    start(
        ctx,
        "ZenML server",
        process(ctx.layout, "zenml", argv, _zenml_env(ctx), ctx.creds),
        lambda: http_ok(f"{ctx.endpoints.zenml_url}/health", b"OK"),
        timeout_s=max(START_TIMEOUT_S, 240),  # the first start creates ~100 tables
    )
    ensure_api_key(ctx)


def _zenml_api(ctx: Context, method: str, path: str, token: str | None, body=None, form=None):
    url = f"{ctx.endpoints.zenml_url}/api/v1{path}"
    headers = {"Accept": "application/json"}
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    elif body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        detail = mask_secrets(exc.read().decode(errors="replace")[:300], ctx.creds)
        raise StackError(f"ZenML server: {method} {path} -> {exc.code}: {detail}") from exc


def zenml_admin_token(ctx: Context) -> str:
    answer = _zenml_api(
        ctx,
        "POST",
        "/login",
        None,
        form={"username": ZENML_ADMIN, "password": ctx.creds["ZENML_ADMIN_PASSWORD"]},
    )
    return answer["access_token"]


def ensure_api_key(ctx: Context) -> None:
    """The clients' service account and its API key (created once, kept in the
    credentials file; a key that no longer works is replaced)."""
    if ctx.creds.get(API_KEY) and _api_key_works(ctx, ctx.creds[API_KEY]):
        return
    token = zenml_admin_token(ctx)
    found = _zenml_api(ctx, "GET", f"/service_accounts?name={ZENML_SERVICE_ACCOUNT}", token)[
        "items"
    ]
    if found:
        account = found[0]["id"]
    else:
        account = _zenml_api(
            ctx,
            "POST",
            "/service_accounts",
            token,
            body={"name": ZENML_SERVICE_ACCOUNT, "active": True, "description": "cryptocast"},
        )["id"]
    name = f"key-{int(time.time())}"
    answer = _zenml_api(
        ctx, "POST", f"/service_accounts/{account}/api_keys", token, body={"name": name}
    )
    key = answer.get("body", {}).get("key") or answer.get("key")
    if not key:
        raise StackError("the ZenML server created an API key but did not return it")
    ctx.creds[API_KEY] = key
    write_credentials(ctx.layout.credentials, ctx.creds)
    ctx.echo(f"  zenml: service account {ZENML_SERVICE_ACCOUNT} has a new API key")


def _api_key_works(ctx: Context, key: str) -> bool:
    try:
        answer = _zenml_api(ctx, "POST", "/login", None, form={"password": key})
    except StackError:
        return False
    return bool(answer.get("access_token"))
