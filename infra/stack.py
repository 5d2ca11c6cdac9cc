"""``make setup``: create the ZenML store and register the cryptocast stack (idempotent).

Stack ``cryptocast`` = default orchestrator + default artifact store + MLflow experiment
tracker + MLflow model deployer + MLflow model registry. Running it again changes nothing.

``make setup STACK=remote`` connects the ZenML home to a ZenML server instead (the one
``make stack-up`` started, or yours: ``ZENML_STORE_URL`` ...) and registers there stack
``cryptocast_remote`` = default orchestrator + S3 artifact store + the same three MLflow
components, named as above, on the MLflow tracking server; the S3 keys are ZenML secrets.
"""

from __future__ import annotations

import contextlib
import os

from zenml.client import Client
from zenml.enums import StackComponentType

from infra.remotestack import (
    ARTIFACT_STORE,
    MLFLOW_SECRET,
    REMOTE_STACK,
    S3_SECRET,
    RemoteSettings,
    StackError,
    artifact_store_config,
    mask_url,
    remote_settings_from_env,
    tracker_config,
)

STACK = "cryptocast"
# stack_name of configs/stacks/kubernetes.yaml (make setup STACK=kubernetes)
K8S_STACK = "cryptocast-k8s"
TRACKER = "cryptocast_mlflow"  # the steps' experiment_tracker
COMPONENTS = {
    StackComponentType.EXPERIMENT_TRACKER: TRACKER,
    StackComponentType.MODEL_DEPLOYER: "cryptocast_deployer",
    StackComponentType.MODEL_REGISTRY: "cryptocast_registry",
}


def ensure_stack() -> list[str]:
    """Create what is missing and activate the stack; return what was done.

    The first call in a new ZenML home (``ZENML_CONFIG_PATH``) also creates its local
    store. With ``ZENML_STORE_API_KEY`` and the other variables of
    :func:`infra.remotestack.remote_settings_from_env` set (CI's secrets), the
    remote stack on those servers instead."""
    from zenml.config.global_config import GlobalConfiguration

    remote = remote_settings_from_env(os.environ)
    if remote is not None:
        return ensure_remote_stack(remote)

    done: list[str] = []
    config = GlobalConfiguration()
    # the stored value (reading the attribute gives ZENML_ANALYTICS_OPT_IN's): stored in
    # this ZenML home, its own `zenml` CLI, run without make, sends nothing either
    if config.__dict__.get("analytics_opt_in", True):
        config.analytics_opt_in = False
        done.append("analytics opt-out stored in the ZenML home")
    client = Client()
    if client.active_stack_model.name in (REMOTE_STACK, K8S_STACK):
        return done  # `setup --stack remote|kubernetes` made it: its components are its own
    for ctype, name in COMPONENTS.items():
        existing = client.list_stack_components(type=ctype, name=name)
        if existing.total == 0:
            client.create_stack_component(
                name=name, flavor="mlflow", component_type=ctype, configuration={}
            )
            done.append(f"registered {ctype.value} {name} (mlflow)")
    components = {
        StackComponentType.ORCHESTRATOR: "default",
        StackComponentType.ARTIFACT_STORE: "default",
        **COMPONENTS,
    }
    return done + activate(client, STACK, components)


def activate(client: Client, name: str, components: dict) -> list[str]:
    """Register stack ``name`` of ``components`` (type -> name or id) if it is missing,
    and make it the active stack; return what was done."""
    done = []
    if client.list_stacks(name=name).total == 0:
        client.create_stack(name=name, components=components)
        done.append(f"registered stack {name}")
    if client.active_stack_model.name != name:
        client.activate_stack(name)
        done.append(f"activated stack {name}")
    return done


def orchestrator_flavor() -> str:
    """The flavor of the active stack's orchestrator (``local``, ``kubernetes``, ...)."""
    return Client().active_stack_model.components[StackComponentType.ORCHESTRATOR][0].flavor_name


def tracking_uri() -> str:
    """The MLflow tracking URI of the active stack (for ``mlflow ui``)."""
    tracker = Client().active_stack.experiment_tracker
    if tracker is None:
        raise RuntimeError("the active ZenML stack has no experiment tracker; run `make setup`")
    return tracker.get_tracking_uri()


def configure_mlflow() -> None:
    """Point the mlflow client at the stack's tracking and registry store (for the CLI)."""
    tracker = Client().active_stack.experiment_tracker
    if tracker is None:
        raise RuntimeError("the active ZenML stack has no experiment tracker; run `make setup`")
    tracker.configure_mlflow()


def connected_server() -> str | None:
    """The URL of the ZenML server this home is connected to (None: a local store)."""
    from zenml.config.global_config import GlobalConfiguration
    from zenml.enums import StoreType

    store = GlobalConfiguration().store_configuration
    return store.url if store.type == StoreType.REST else None


def use_local_store() -> list[str]:
    """``setup --stack local`` in a home connected to a server: back to its own store."""
    from zenml.config.global_config import GlobalConfiguration

    url = connected_server()
    # only away from the remote stack: a home connected to `make dashboard`'s local
    # server keeps using it, as before
    if url is None or Client().active_stack_model.name != REMOTE_STACK:
        return []
    GlobalConfiguration().set_default_store()
    return [f"disconnected from the ZenML server {mask_url(url)}; using the local store"]


def connect(remote: RemoteSettings) -> list[str]:
    """Log this ZenML home in to the server with the service account's API key (kept in
    the home's credentials store, as ``zenml login --api-key`` does)."""
    from zenml.config.global_config import GlobalConfiguration
    from zenml.exceptions import AuthorizationException, CredentialsNotValid
    from zenml.login.credentials_store import get_credentials_store
    from zenml.zen_stores.rest_zen_store import RestZenStoreConfiguration

    url = remote.endpoints.zenml_url
    if connected_server() == url:
        with contextlib.suppress(Exception):
            Client().zen_store.get_store_info(force_refresh=True)  # a request: the key works
            return []
    get_credentials_store().set_api_key(url, remote.api_key)
    try:
        GlobalConfiguration().set_store(RestZenStoreConfiguration(url=url))
    except (CredentialsNotValid, AuthorizationException) as exc:
        raise StackError(f"the ZenML server {mask_url(url)} refused the API key: {exc}") from exc
    except Exception as exc:  # connection refused, timeouts: say where
        raise StackError(f"cannot reach the ZenML server {mask_url(url)}: {exc}") from exc
    return [f"connected to the ZenML server {mask_url(url)} (service account API key)"]


def _ensure_secret(client: Client, name: str, values: dict[str, str], done: list[str]) -> None:
    found = client.list_secrets(name=name)
    if found.total == 0:
        client.create_secret(name=name, values=values)
        done.append(f"created secret {name}")
        return
    current = client.get_secret(found.items[0].id).secret_values
    if current != values:
        client.update_secret(found.items[0].id, add_or_update_values=values)
        done.append(f"updated secret {name}")


def _ensure_component(
    client: Client, ctype: StackComponentType, name: str, flavor: str, config: dict, done: list
) -> None:
    found = client.list_stack_components(type=ctype, name=name)
    if found.total == 0:
        client.create_stack_component(
            name=name, flavor=flavor, component_type=ctype, configuration=config
        )
        done.append(f"registered {ctype.value} {name} ({flavor})")
        return
    component = found.items[0]
    if (
        component.flavor_name != flavor
        or {k: component.configuration.get(k) for k in config} != config
    ):
        client.update_stack_component(
            name_id_or_prefix=component.id, component_type=ctype, configuration=config
        )
        done.append(f"updated {ctype.value} {name}")


def ensure_remote_stack(remote: RemoteSettings) -> list[str]:
    """Connect to the server, then create/update the secrets, the components and stack
    :data:`REMOTE_STACK` there and activate it (idempotent: a second call changes
    nothing)."""
    done = connect(remote)
    client = Client()
    _ensure_secret(
        client,
        S3_SECRET,
        {"aws_access_key_id": remote.s3_access_key, "aws_secret_access_key": remote.s3_secret_key},
        done,
    )
    _ensure_secret(
        client,
        MLFLOW_SECRET,
        {"username": remote.mlflow_username, "password": remote.mlflow_password},
        done,
    )
    _ensure_component(
        client,
        StackComponentType.ARTIFACT_STORE,
        ARTIFACT_STORE,
        "s3",
        artifact_store_config(remote.endpoints),
        done,
    )
    tracker = tracker_config(remote.endpoints)
    for ctype, name in COMPONENTS.items():
        config = tracker if ctype == StackComponentType.EXPERIMENT_TRACKER else {}
        _ensure_component(client, ctype, name, "mlflow", config, done)
    components = {
        StackComponentType.ORCHESTRATOR: "default",
        StackComponentType.ARTIFACT_STORE: ARTIFACT_STORE,
        **COMPONENTS,
    }
    return done + activate(client, REMOTE_STACK, components)
