"""The Kubernetes stack: load, validate and register ``configs/stacks/kubernetes.yaml``, and
build a run's configuration from ``configs/<gran>.yaml`` + ``configs/stacks/kubernetes-run.yaml``.

The stack file has the layout of ``zenml stack export`` with ``${NAME}`` /
``${NAME:-default}`` placeholders filled from the environment. Every component's
configuration is validated against its ZenML flavor's config class, offline (secret
references stand in for their values). ZenML checks Kubernetes pod settings (resources,
env, security context, ...) by converting them to the ``kubernetes`` client's models: with
that package installed the check is ZenML's own; without it (the lockfile has none) those
fields are checked for their type only. ``resources`` are always checked here too (names,
quantities, requests <= limits).

    cryptocast k8s check              # validate the stack file and the run overlay
    cryptocast k8s commands           # the equivalent `zenml ... register` commands
    cryptocast k8s register           # register what is missing, activate the stack
    cryptocast k8s run-config GRAN FIT_STEP... [--threads N] [--out FILE]

(``cli/k8s.py``). Modules: ``settings`` (files, placeholders, Kubernetes settings),
``stackfile`` (the stack file and its registration), ``run_overlay`` (a run configuration
with the pods' overlay).
"""

from __future__ import annotations

from infra.k8s.run_overlay import deep_merge, run_config, run_config_file, run_config_problems
from infra.k8s.settings import (
    CLI,
    FIT_TEMPLATE,
    K8S_SETTINGS,
    RESOURCE_NAMES,
    RUN_OVERLAY,
    STACK_FILE,
    THREAD_VARIABLES,
    expand,
    flavor_classes,
    kubernetes_settings_problems,
    pod_settings_problems,
    quantity,
    resources_problems,
)
from infra.k8s.stackfile import (
    component_problems,
    components,
    load_stack,
    register,
    register_commands,
    secrets_as_stand_ins,
)

__all__ = [
    "CLI",
    "FIT_TEMPLATE",
    "K8S_SETTINGS",
    "RESOURCE_NAMES",
    "RUN_OVERLAY",
    "STACK_FILE",
    "THREAD_VARIABLES",
    "component_problems",
    "components",
    "deep_merge",
    "expand",
    "flavor_classes",
    "kubernetes_settings_problems",
    "load_stack",
    "pod_settings_problems",
    "quantity",
    "register",
    "register_commands",
    "resources_problems",
    "run_config",
    "run_config_file",
    "run_config_problems",
    "secrets_as_stand_ins",
]
