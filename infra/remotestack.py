"""The production stack's pure parts: where its files are, its ports, its credentials,
the URLs and configurations built from them (no processes, no ZenML).

``make stack-up`` (``infra/prodstack/``) starts, on 127.0.0.1, a ZenML server on
MariaDB, an MLflow tracking server on PostgreSQL with proxied artefacts, and SeaweedFS's
S3 gateway; ``make setup STACK=remote`` (``infra/stack.py``) connects a ZenML home to
them. Both read what is decided here.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from cryptocast.errors import UserError

STACK_DIR_ENV = "STACK_DIR"
DEFAULT_STACK_DIR = ".stack"  # relative to the repository root (git-ignored)
CREDENTIALS_FILE = "credentials.env"
STATE_FILE = "stack.json"
ZENML_BUCKET = "cryptocast-zenml"
MLFLOW_BUCKET = "cryptocast-mlflow"
S3_REGION = "us-east-1"
ZENML_ADMIN = "admin"
MLFLOW_ADMIN = "admin"
ZENML_SERVICE_ACCOUNT = "cryptocast-client"
ZENML_DB = "zenml"
ZENML_DB_USER = "zenml"
MLFLOW_DB = "mlflow"
POSTGRES_USER = "postgres"


class StackError(UserError, RuntimeError):
    """The production stack cannot start or be reached: what, and what to do."""


@dataclass(frozen=True)
class Ports:
    """Every port the stack listens on (127.0.0.1 only). None of them is the project's
    own (front doors 8080/8081, dashboard 8237, exporter 9464) nor a service's default,
    so the stack runs beside a system MariaDB/PostgreSQL/MLflow."""

    zenml: int = 8238
    mlflow: int = 5050
    s3: int = 8333
    mariadb: int = 3307
    postgres: int = 5433
    # SeaweedFS's own master, volume and filer servers and their gRPC ports
    weed_master: int = 9335
    weed_volume: int = 8385
    weed_filer: int = 8889
    weed_master_grpc: int = 19335
    weed_volume_grpc: int = 18385
    weed_filer_grpc: int = 18889
    weed_s3_grpc: int = 18333

    @staticmethod
    def env_name(name: str) -> str:
        return f"STACK_{name.upper()}_PORT"

    @classmethod
    def from_env(cls, env: Mapping[str, str], saved: Mapping[str, int] | None = None) -> Ports:
        """Ports from ``STACK_<NAME>_PORT`` variables, else those saved at the first
        start, else the defaults."""
        values: dict[str, int] = {}
        for f in fields(cls):
            raw = env.get(cls.env_name(f.name))
            if raw:
                if not raw.isdigit() or not 0 < int(raw) < 65536:
                    raise StackError(f"{cls.env_name(f.name)}={raw!r} is not a port number")
                values[f.name] = int(raw)
            elif saved and f.name in saved:
                values[f.name] = int(saved[f.name])
        ports = cls(**values)
        taken = list(asdict(ports).values())
        if len(set(taken)) != len(taken):
            raise StackError(f"two services of the stack would share a port: {sorted(taken)}")
        return ports


@dataclass(frozen=True)
class Layout:
    """The stack's files under one directory (``STACK_DIR``, default ``.stack/``)."""

    root: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str], repo_root: Path) -> Layout:
        raw = env.get(STACK_DIR_ENV) or DEFAULT_STACK_DIR
        path = Path(raw).expanduser()
        return cls((path if path.is_absolute() else repo_root / path).resolve())

    @property
    def credentials(self) -> Path:
        return self.root / CREDENTIALS_FILE

    @property
    def state(self) -> Path:
        return self.root / STATE_FILE

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"  # pid files and sockets

    def data(self, service: str) -> Path:
        return self.root / service


CREDENTIAL_KEYS = (
    "ZENML_DB_PASSWORD",
    "ZENML_ADMIN_PASSWORD",
    "ZENML_JWT_SECRET_KEY",
    "ZENML_SECRETS_ENCRYPTION_KEY",
    "POSTGRES_PASSWORD",
    "S3_ACCESS_KEY_ID",
    "S3_SECRET_ACCESS_KEY",
    "MLFLOW_ADMIN_PASSWORD",
    "MLFLOW_FLASK_SECRET_KEY",
)
# written once the ZenML server has created the clients' service account
API_KEY = "ZENML_STORE_API_KEY"


def generate_credentials() -> dict[str, str]:
    """Fresh random secrets for every service (URL-safe, no quoting needed)."""
    return {
        "ZENML_DB_PASSWORD": secrets.token_urlsafe(24),
        "ZENML_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        "ZENML_JWT_SECRET_KEY": secrets.token_hex(32),
        "ZENML_SECRETS_ENCRYPTION_KEY": secrets.token_hex(32),
        "POSTGRES_PASSWORD": secrets.token_urlsafe(24),
        # S3 access keys look like AWS's: 20 upper-case characters, 40 of secret
        "S3_ACCESS_KEY_ID": "CC" + secrets.token_hex(9).upper(),
        "S3_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
        "MLFLOW_ADMIN_PASSWORD": secrets.token_urlsafe(24),
        "MLFLOW_FLASK_SECRET_KEY": secrets.token_hex(32),  # CSRF tokens of the auth app
    }


_LINE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines (``#`` comments and blank lines skipped)."""
    out: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise StackError(f"line {number} of the credentials file is not KEY=value")
        out[match[1]] = match[2]
    return out


def write_credentials(path: Path, creds: Mapping[str, str]) -> None:
    """Write ``creds`` to ``path``, readable by its owner only (0600) from the first byte:
    the file is created with that mode, then renamed over the old one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    text = "# cryptocast production stack: generated secrets. Never commit or print.\n"
    text += "".join(f"{k}={v}\n" for k, v in creds.items())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def read_credentials(path: Path) -> dict[str, str]:
    """The credentials file; an error naming it if it is missing, incomplete or readable
    by others."""
    if not path.is_file():
        raise StackError(f"no credentials at {path}: run `make stack-up` first")
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise StackError(f"{path} is readable by others (mode {mode:o}): chmod 600 {path}")
    creds = parse_env_file(path.read_text())
    missing = [k for k in CREDENTIAL_KEYS if not creds.get(k)]
    if missing:
        raise StackError(f"{path} lacks {', '.join(missing)}: remove it and the stack's data")
    return creds


def ensure_credentials(path: Path) -> tuple[dict[str, str], bool]:
    """The credentials (generated and written on the first call; a key added by a newer
    version is generated and added); whether any is new."""
    if not path.exists():
        creds = generate_credentials()
        write_credentials(path, creds)
        return creds, True
    try:
        return read_credentials(path), False
    except StackError:
        if not path.is_file() or path.stat().st_mode & 0o077:
            raise
    creds = parse_env_file(path.read_text())
    creds = {**generate_credentials(), **{k: v for k, v in creds.items() if v}}
    write_credentials(path, creds)
    return creds, True


def mask_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``, for printing."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def mask_secrets(text: str, creds: Mapping[str, str]) -> str:
    """``text`` with every credential value replaced by ``***`` (for error messages that
    quote a server's log or a command's output)."""
    for value in sorted(filter(None, creds.values()), key=len, reverse=True):
        if len(value) >= 8:
            text = text.replace(value, "***")
    return text


@dataclass(frozen=True)
class Endpoints:
    """Where clients reach the stack (everything a ZenML home needs to connect)."""

    zenml_url: str
    mlflow_url: str
    s3_endpoint: str
    zenml_bucket: str = ZENML_BUCKET
    mlflow_bucket: str = MLFLOW_BUCKET
    region: str = S3_REGION

    @classmethod
    def local(cls, ports: Ports) -> Endpoints:
        return cls(
            zenml_url=f"http://127.0.0.1:{ports.zenml}",
            mlflow_url=f"http://127.0.0.1:{ports.mlflow}",
            s3_endpoint=f"http://127.0.0.1:{ports.s3}",
        )


def zenml_store_url(ports: Ports) -> str:
    """The ZenML server's database (the password goes in ``ZENML_STORE_PASSWORD``)."""
    return f"mysql://{ZENML_DB_USER}@127.0.0.1:{ports.mariadb}/{ZENML_DB}"


def mlflow_backend_uri(ports: Ports) -> str:
    """MLflow's backend store through psycopg 3 (the password goes in ``PGPASSWORD``)."""
    return f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{ports.postgres}/{MLFLOW_DB}"


def seaweed_s3_config(creds: Mapping[str, str]) -> dict:
    """SeaweedFS's ``-s3.config``: one identity with the generated keys, all actions.
    With an identity configured, anonymous requests are refused."""
    return {
        "identities": [
            {
                "name": "cryptocast",
                "credentials": [
                    {
                        "accessKey": creds["S3_ACCESS_KEY_ID"],
                        "secretKey": creds["S3_SECRET_ACCESS_KEY"],
                    }
                ],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def s3_env(endpoints: Endpoints, creds: Mapping[str, str]) -> dict[str, str]:
    """Environment that points boto3 (MLflow's S3 artefact repository) at the gateway."""
    return {
        "AWS_ACCESS_KEY_ID": creds["S3_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": creds["S3_SECRET_ACCESS_KEY"],
        "AWS_DEFAULT_REGION": endpoints.region,
        "MLFLOW_S3_ENDPOINT_URL": endpoints.s3_endpoint,
    }


def mlflow_auth_ini(database: Path) -> str:
    """MLflow's basic-auth configuration (``MLFLOW_AUTH_CONFIG_PATH``): users in a SQLite
    file of the stack; the admin's password comes from ``MLFLOW_AUTH_ADMIN_PASSWORD``
    (not in this file). Nobody but a user gets anything; a checked password is cached
    for a minute (PBKDF2 on every request costs a third of the throughput)."""
    return (
        "[mlflow]\n"
        "default_permission = READ\n"
        f"database_uri = sqlite:///{database}\n"
        f"admin_username = {MLFLOW_ADMIN}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "auth_cache_ttl_seconds = 60\n"
    )


# ZenML names, also read by infra/stack.py
REMOTE_STACK = "cryptocast_remote"
S3_SECRET = "cryptocast_s3"
ARTIFACT_STORE = "cryptocast_s3_store"


def artifact_store_config(endpoints: Endpoints) -> dict:
    """ZenML's S3 artefact store on the gateway; the keys are references to the ZenML
    secret :data:`S3_SECRET` (the server keeps them, encrypted; the stack's configuration
    holds only the references)."""
    return {
        "path": f"s3://{endpoints.zenml_bucket}/artifacts",
        "key": f"{{{{{S3_SECRET}.aws_access_key_id}}}}",
        "secret": f"{{{{{S3_SECRET}.aws_secret_access_key}}}}",
        "client_kwargs": {"endpoint_url": endpoints.s3_endpoint, "region_name": endpoints.region},
    }


MLFLOW_SECRET = "cryptocast_mlflow_auth"


def tracker_config(endpoints: Endpoints) -> dict:
    """The MLflow experiment tracker (and so the model registry) on the tracking server,
    which serves the models' artefacts itself (``mlflow-artifacts:``): clients need no
    S3 keys for MLflow. The user name and password (ZenML requires credentials for a
    remote tracking server) are references to the ZenML secret :data:`MLFLOW_SECRET`."""
    return {
        "tracking_uri": endpoints.mlflow_url,
        "tracking_username": f"{{{{{MLFLOW_SECRET}.username}}}}",
        "tracking_password": f"{{{{{MLFLOW_SECRET}.password}}}}",
    }


@dataclass
class RemoteSettings:
    """What ``setup STACK=remote`` connects to: the local stack's endpoints and
    credentials, or your own servers' from the environment."""

    endpoints: Endpoints
    api_key: str
    s3_access_key: str
    s3_secret_key: str
    mlflow_username: str
    mlflow_password: str
    source: str = field(default="local")


REMOTE_ENV = ("ZENML_STORE_URL", "ZENML_STORE_API_KEY", "MLFLOW_TRACKING_URI")


def remote_settings_from_env(env: Mapping[str, str]) -> RemoteSettings | None:
    """Your own servers, when a service account's ``ZENML_STORE_API_KEY`` is set (CI's
    secrets): all of ``ZENML_STORE_URL``, ``MLFLOW_TRACKING_URI``,
    ``MLFLOW_TRACKING_USERNAME``, ``MLFLOW_TRACKING_PASSWORD``, ``S3_ENDPOINT_URL``,
    ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` are then required
    (``ZENML_BUCKET``, ``AWS_DEFAULT_REGION`` optional).

    ``ZENML_STORE_URL`` alone is not the sign: ZenML sets it (with
    ``ZENML_STORE_API_TOKEN``, never the key) in every step's environment, and so in a
    training run that the monitoring pipeline starts."""
    if not env.get("ZENML_STORE_API_KEY"):
        return None
    need = (
        *REMOTE_ENV,
        "MLFLOW_TRACKING_USERNAME",
        "MLFLOW_TRACKING_PASSWORD",
        "S3_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
    )
    missing = [k for k in need if not env.get(k)]
    if missing:
        raise StackError(
            f"ZENML_STORE_API_KEY is set (your own servers) but {', '.join(missing)} is not"
        )
    return RemoteSettings(
        endpoints=Endpoints(
            zenml_url=env["ZENML_STORE_URL"].rstrip("/"),
            mlflow_url=env["MLFLOW_TRACKING_URI"].rstrip("/"),
            s3_endpoint=env["S3_ENDPOINT_URL"].rstrip("/"),
            zenml_bucket=env.get("ZENML_BUCKET") or ZENML_BUCKET,
            region=env.get("AWS_DEFAULT_REGION") or S3_REGION,
        ),
        api_key=env["ZENML_STORE_API_KEY"],
        s3_access_key=env["AWS_ACCESS_KEY_ID"],
        s3_secret_key=env["AWS_SECRET_ACCESS_KEY"],
        mlflow_username=env["MLFLOW_TRACKING_USERNAME"],
        mlflow_password=env["MLFLOW_TRACKING_PASSWORD"],
        source="environment",
    )


def remote_settings_from_stack(layout: Layout, env: Mapping[str, str]) -> RemoteSettings:
    """The stack that ``make stack-up`` started under ``layout``."""
    creds = read_credentials(layout.credentials)
    if not creds.get(API_KEY):
        raise StackError(f"{layout.credentials} has no {API_KEY}: run `make stack-up` first")
    ports = Ports.from_env(env, load_state(layout).get("ports"))
    return RemoteSettings(
        endpoints=Endpoints.local(ports),
        api_key=creds[API_KEY],
        s3_access_key=creds["S3_ACCESS_KEY_ID"],
        s3_secret_key=creds["S3_SECRET_ACCESS_KEY"],
        mlflow_username=MLFLOW_ADMIN,
        mlflow_password=creds["MLFLOW_ADMIN_PASSWORD"],
        source=str(layout.root),
    )


def load_state(layout: Layout) -> dict:
    """``stack.json``: the ports chosen at the first start (later starts keep them)."""
    try:
        return json.loads(layout.state.read_text())
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        raise StackError(f"{layout.state} is not valid JSON: {exc}") from exc


def save_state(layout: Layout, ports: Ports) -> None:
    layout.root.mkdir(parents=True, exist_ok=True)
    tmp = layout.state.with_name(f".{STATE_FILE}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps({"ports": asdict(ports)}, indent=2) + "\n")
    os.replace(tmp, layout.state)
