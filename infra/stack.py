"""``make setup``: create the ZenML store and register the cryptocast stack (idempotent).

Stack ``cryptocast`` = default orchestrator + default artifact store + MLflow experiment
tracker + MLflow model deployer + MLflow model registry. Running it again changes nothing.
"""

from __future__ import annotations

from zenml.client import Client
from zenml.enums import StackComponentType

STACK = "cryptocast"
TRACKER = "cryptocast_mlflow"  # the steps' experiment_tracker
COMPONENTS = {
    StackComponentType.EXPERIMENT_TRACKER: TRACKER,
    StackComponentType.MODEL_DEPLOYER: "cryptocast_deployer",
    StackComponentType.MODEL_REGISTRY: "cryptocast_registry",
}


def ensure_stack() -> list[str]:
    """Create what is missing and activate the stack; return what was done.

    The first call in a new ZenML home (``ZENML_CONFIG_PATH``) also creates its local
    store."""
    from zenml.config.global_config import GlobalConfiguration

    done: list[str] = []
    config = GlobalConfiguration()
    # the stored value (reading the attribute gives ZENML_ANALYTICS_OPT_IN's): stored in
    # this ZenML home, its own `zenml` CLI, run without make, sends nothing either
    if config.__dict__.get("analytics_opt_in", True):
        config.analytics_opt_in = False
        done.append("analytics opt-out stored in the ZenML home")
    client = Client()
    for ctype, name in COMPONENTS.items():
        existing = client.list_stack_components(type=ctype, name=name)
        if existing.total == 0:
            client.create_stack_component(
                name=name, flavor="mlflow", component_type=ctype, configuration={}
            )
            done.append(f"registered {ctype.value} {name} (mlflow)")
    if client.list_stacks(name=STACK).total == 0:
        components = {
            StackComponentType.ORCHESTRATOR: "default",
            StackComponentType.ARTIFACT_STORE: "default",
            **COMPONENTS,
        }
        client.create_stack(name=STACK, components=components)
        done.append(f"registered stack {STACK}")
    if client.active_stack_model.name != STACK:
        client.activate_stack(STACK)
        done.append(f"activated stack {STACK}")
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
