"""The Kubernetes stack's files, their ``${NAME}`` placeholders, and the validation of
Kubernetes settings (resources, pod settings, orchestrator settings) with ZenML's classes."""

from __future__ import annotations

import importlib.util
import os
import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml

from cryptocast.paths import REPO_ROOT
from cryptocast.runconfig import ConfigError

STACK_FILE = REPO_ROOT / "configs" / "stacks" / "kubernetes.yaml"
RUN_OVERLAY = REPO_ROOT / "configs" / "stacks" / "kubernetes-run.yaml"
FIT_TEMPLATE = "fit"  # steps.fit of the overlay: copied to every fit step of a run
K8S_SETTINGS = "orchestrator.kubernetes"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

# `zenml <noun> register` and `zenml stack register` option of each component type
CLI = {
    "orchestrator": ("orchestrator", "-o"),
    "artifact_store": ("artifact-store", "-a"),
    "container_registry": ("container-registry", "-c"),
    "image_builder": ("image-builder", "-i"),
    "experiment_tracker": ("experiment-tracker", "-e"),
    "model_registry": ("model-registry", "-r"),
    "model_deployer": ("model-deployer", "-d"),
}
RESOURCE_NAMES = {"cpu", "memory", "ephemeral-storage"}
_PLACEHOLDER = re.compile(r"\$\{([A-Z_][A-Z0-9_]*)(?::-([^}]*))?\}")
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {"": Decimal(1), "m": Decimal("0.001")}
for _power, (_si, _iec) in enumerate(
    zip("kMGTPE", ("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"), strict=True), 1
):
    _SUFFIX[_si], _SUFFIX[_iec] = Decimal(1000) ** _power, Decimal(1024) ** _power


def expand(text: str, env: Mapping[str, str] | None = None, *, where: str = "") -> str:
    """Fill ``${NAME}`` / ``${NAME:-default}``; every unset name without a default is an
    error, all named at once."""
    env = os.environ if env is None else env
    missing: list[str] = []

    def fill(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if env.get(name):
            return env[name]
        if default is not None:
            return default
        missing.append(name)
        return ""

    out = _PLACEHOLDER.sub(fill, text)
    if missing:
        raise ConfigError(f"{where}: set {', '.join(sorted(set(missing)))} in the environment")
    return out


def _read(path: Path, env: Mapping[str, str] | None) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    data = yaml.safe_load(expand(text, env, where=str(path)))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping")
    return data


def quantity(value: Any) -> Decimal:
    """A Kubernetes quantity (``500m``, ``2``, ``3Gi``) as a number."""
    match = _QUANTITY.match(str(value))
    if match is None:
        raise ValueError(f"{value!r} is not a Kubernetes quantity")
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""]
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from None


def resources_problems(resources: Any) -> list[str]:
    """What is wrong with a pod's ``resources`` (requests/limits of cpu, memory, ...)."""
    if not isinstance(resources, dict):
        return [f"resources must be a mapping, not {resources!r}"]
    problems = [
        f"resources.{key}: not requests or limits"
        for key in resources
        if key not in ("requests", "limits")
    ]
    parsed: dict[str, dict[str, Decimal]] = {}
    for kind in ("requests", "limits"):
        for name, value in (resources.get(kind) or {}).items():
            if name not in RESOURCE_NAMES:
                problems.append(f"resources.{kind}.{name}: not one of {sorted(RESOURCE_NAMES)}")
                continue
            try:
                parsed.setdefault(kind, {})[name] = quantity(value)
            except ValueError as exc:
                problems.append(f"resources.{kind}.{name}: {exc}")
    for name, request in parsed.get("requests", {}).items():
        limit = parsed.get("limits", {}).get(name)
        if limit is not None and request > limit:
            problems.append(f"resources: {name} request {request} exceeds its limit {limit}")
    return problems


def pod_settings_problems(pod_settings: Any) -> list[str]:
    """Validate pod settings with ZenML's ``KubernetesPodSettings``: all of it when the
    ``kubernetes`` package is installed; otherwise the fields whose ZenML validators need
    that package are checked for their type only, and ``resources`` by
    :func:`resources_problems` (always)."""
    from pydantic import TypeAdapter, ValidationError
    from zenml.integrations.kubernetes.pod_settings import KubernetesPodSettings

    if not isinstance(pod_settings, dict):
        return [f"pod settings must be a mapping, not {pod_settings!r}"]
    problems = resources_problems(pod_settings.get("resources", {}))
    checked, typed = pod_settings, {}
    if importlib.util.find_spec("kubernetes") is None:
        validated = {  # every field with a validator: each imports `kubernetes`
            field
            for decorator in KubernetesPodSettings.__pydantic_decorators__.field_validators.values()
            for field in decorator.info.fields
        }
        checked = {k: v for k, v in pod_settings.items() if k not in validated}
        typed = {k: v for k, v in pod_settings.items() if k in validated}
    for key, value in typed.items():
        try:
            TypeAdapter(KubernetesPodSettings.model_fields[key].annotation).validate_python(value)
        except ValidationError as exc:
            problems += [f"{key}: {e['msg']}" for e in exc.errors()]
    try:
        KubernetesPodSettings.model_validate(checked)
    except ValidationError as exc:
        problems += [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    return problems


def _split_pods(config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    pods = {k: config[k] for k in ("pod_settings", "orchestrator_pod_settings") if k in config}
    return {k: v for k, v in config.items() if k not in pods}, pods


def kubernetes_settings_problems(settings: Any, config_class: Any = None) -> list[str]:
    """Validate Kubernetes orchestrator settings (or, with ``config_class``, the
    orchestrator's configuration) with ZenML's classes, pod settings included."""
    from pydantic import ValidationError
    from zenml.integrations.kubernetes.flavors import KubernetesOrchestratorSettings

    if not isinstance(settings, dict):
        return [f"settings must be a mapping, not {settings!r}"]
    rest, pods = _split_pods(settings)
    problems = []
    try:
        (config_class or KubernetesOrchestratorSettings).model_validate(rest)
    except ValidationError as exc:
        problems += [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    for key, value in pods.items():
        problems += [f"{key}.{p}" for p in pod_settings_problems(value)]
    return problems


def flavor_classes() -> dict[tuple[str, str], type]:
    """(component type, flavor name) -> ZenML flavor class: the built-in flavors and those
    of the integrations this stack uses (importing them needs no extra package)."""
    from zenml.integrations.kubernetes import KubernetesIntegration
    from zenml.integrations.mlflow import MlflowIntegration
    from zenml.integrations.s3 import S3Integration
    from zenml.stack.flavor_registry import FlavorRegistry

    flavors = list(FlavorRegistry().builtin_flavors)
    for integration in (KubernetesIntegration, MlflowIntegration, S3Integration):
        flavors += integration.flavors()
    return {(f().type.value, f().name): f for f in flavors}
