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

    python -m infra.k8s check              # validate the stack file and the run overlay
    python -m infra.k8s commands           # the equivalent `zenml ... register` commands
    python -m infra.k8s register           # register what is missing, activate the stack
    python -m infra.k8s run-config GRAN FIT_STEP... [--threads N] [--out FILE]
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import json
import os
import re
import shlex
import sys
import tempfile
from collections.abc import Iterator, Mapping
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


def load_stack(path: Path = STACK_FILE, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The stack file with its placeholders filled, every component validated."""
    import zenml

    data = _read(path, env)
    if data.get("zenml_version") != zenml.__version__:
        raise ConfigError(
            f"{path}: written for ZenML {data.get('zenml_version')}, this is {zenml.__version__}"
        )
    if not data.get("stack_name") or not isinstance(data.get("components"), dict):
        raise ConfigError(f"{path}: expected stack_name and components")
    problems = []
    for ctype, component in components(data):
        problems += [
            f"{ctype} {component.get('name')}: {p}" for p in component_problems(ctype, component)
        ]
    if problems:
        raise ConfigError(f"{path}: " + "; ".join(problems))
    return data


def components(stack: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(type, component) pairs of a stack file (each type holds one or a list)."""
    out = []
    for ctype, value in stack["components"].items():
        for component in value if isinstance(value, list) else [value]:
            out.append((ctype, component))
    return out


def component_problems(ctype: str, component: Any) -> list[str]:
    """What is wrong with one component: its shape, flavor and configuration."""
    from pydantic import ValidationError

    if ctype not in CLI:
        return [f"component type {ctype!r} is not one of {sorted(CLI)}"]
    if not isinstance(component, dict) or not {"name", "flavor"} <= component.keys():
        return ["expected name, flavor and configuration"]
    flavor = flavor_classes().get((ctype, component["flavor"]))
    if flavor is None:
        return [f"no ZenML flavor {component['flavor']!r} for {ctype}"]
    config_class = flavor().config_class
    configuration, problems = secrets_as_stand_ins(config_class, component.get("configuration"))
    if ctype == "orchestrator" and component["flavor"] == "kubernetes":
        return problems + kubernetes_settings_problems(configuration, config_class)
    try:
        config = config_class.model_validate(configuration)
    except ValidationError as exc:
        return problems + [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    except Exception as exc:  # some ZenML validators raise their own errors (artifact stores)
        return [*problems, f"{type(exc).__name__}: {exc}"]
    if config.is_local:
        problems.append("is a local component: the pods could not reach it")
    return problems


def secrets_as_stand_ins(config_class: Any, configuration: Any) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``configuration`` whose secret fields (ZenML ``SecretField``) hold stand-in
    values, so that it validates offline (ZenML resolves a ``{{secret.key}}`` reference
    from the server's secret store as soon as a validator reads the field); a secret
    field given as a plain value is a problem: credentials belong in ZenML secrets."""
    from zenml.utils import secret_utils

    configuration = dict(configuration or {})
    problems = []
    for key, value in configuration.items():
        field = config_class.model_fields.get(key)
        if field is None or not secret_utils.is_secret_field(field):
            continue
        if secret_utils.is_secret_reference(value):
            configuration[key] = f"stand-in for {value}"
        else:
            problems.append(
                f"{key}: a credential must be a ZenML secret reference ({{{{name.key}}}})"
            )
    return configuration, problems


def _value(value: Any) -> str:
    """A configuration value as `zenml ... register --key=value` takes it (JSON for
    mappings and lists, which ZenML parses)."""
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value).lower() if isinstance(value, bool) else str(value)


def register_commands(stack: dict[str, Any]) -> list[str]:
    """The ``zenml`` commands that register the stack's components and the stack."""
    lines = [  # the secrets the configuration refers to ({{secret.key}}); fill in the values
        "zenml secret create cryptocast_s3 --aws_access_key_id=... --aws_secret_access_key=...",
        "zenml secret create cryptocast_mlflow --username=... --password=...",
    ]
    stack_options = []
    for ctype, component in components(stack):
        noun, option = CLI[ctype]
        args = [f"--flavor={component['flavor']}"] + [
            f"--{key}={_value(value)}"
            for key, value in (component.get("configuration") or {}).items()
        ]
        lines.append(shlex.join(["zenml", noun, "register", component["name"], *args]))
        stack_options += [option, component["name"]]
    lines.append(
        shlex.join(["zenml", "stack", "register", stack["stack_name"], *stack_options, "--set"])
    )
    return lines


def register(stack: dict[str, Any]) -> list[str]:
    """Register what is missing and activate the stack; return what was done. A component
    that exists under the same name is reused; one configured differently is reported and
    left as it is (``zenml <type> update`` changes it)."""
    from zenml.client import Client
    from zenml.enums import StackComponentType

    from infra.stack import activate

    client, done, ids = Client(), [], {}
    for ctype, component in components(stack):
        kind = StackComponentType(ctype)
        config = component.get("configuration") or {}
        found = client.list_stack_components(type=kind, name=component["name"])
        if found.total:
            existing = found.items[0]
            if existing.flavor_name != component["flavor"]:
                raise ConfigError(
                    f"{ctype} {component['name']} exists with flavor {existing.flavor_name}, "
                    f"not {component['flavor']}"
                )
            if existing.configuration != config:
                done.append(
                    f"{ctype} {component['name']} exists, configured differently: left as is"
                )
            ids[kind] = existing.id
            continue
        created = client.create_stack_component(
            name=component["name"], flavor=component["flavor"], component_type=kind,
            configuration=config,
        )  # fmt: skip
        ids[kind] = created.id
        done.append(f"registered {ctype} {component['name']} ({component['flavor']})")
    return done + activate(client, stack["stack_name"], ids)


def deep_merge(base: dict[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def run_config(
    base: dict[str, Any],
    fit_steps: list[str],
    threads: int,
    overlay_path: Path = RUN_OVERLAY,
    env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """``base`` (a configs/<gran>.yaml) with the overlay merged in: ``steps.fit`` becomes
    every step of ``fit_steps``, each pod getting ``threads`` CPUs (request = limit) and the
    OpenMP/BLAS thread variables set to ``threads``. Validated with ZenML's run-config
    schema and the Kubernetes settings classes."""
    if threads < 1:
        raise ConfigError(f"scale.threads must be at least 1, not {threads}")
    if not fit_steps or any(not s.startswith("fit_") for s in fit_steps):
        raise ConfigError(f"fit steps must be named fit_<shard>: {fit_steps}")
    overlay = _read(overlay_path, env)
    steps = overlay.get("steps") or {}
    if FIT_TEMPLATE not in steps:
        raise ConfigError(
            f"{overlay_path}: steps.{FIT_TEMPLATE} (the fit steps' template) is missing"
        )
    template = steps.pop(FIT_TEMPLATE)
    cpu = {"requests": {"cpu": str(threads)}, "limits": {"cpu": str(threads)}}
    fit = deep_merge(template, {
        "settings": {K8S_SETTINGS: {"pod_settings": {"resources": cpu}}},
        "environment": dict.fromkeys(THREAD_VARIABLES, str(threads)),
    })  # fmt: skip
    for name in fit_steps:
        steps[name] = copy.deepcopy(fit)
    merged = deep_merge(base, overlay | {"steps": steps})
    problems = run_config_problems(merged)
    if problems:
        raise ConfigError(f"{overlay_path} over the run config: " + "; ".join(problems))
    return merged


@contextlib.contextmanager
def run_config_file(base: dict[str, Any], fit_steps: list[str], threads: int) -> Iterator[Path]:
    """:func:`run_config` written to a temporary file (ZenML reads a path), removed after."""
    with tempfile.TemporaryDirectory(prefix="cryptocast-k8s-") as tmp:
        path = Path(tmp) / "run.yaml"
        path.write_text(yaml.safe_dump(run_config(base, fit_steps, threads), sort_keys=False))
        yield path


def run_config_problems(config: dict[str, Any]) -> list[str]:
    """Validate a run configuration with ZenML's schema, and its Docker and Kubernetes
    settings (pipeline and step level) with their classes."""
    from pydantic import ValidationError
    from zenml.config import DockerSettings, ResourceSettings
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    try:
        PipelineRunConfiguration.model_validate(config)
    except ValidationError as exc:
        return [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()]
    scopes = {"settings": config.get("settings") or {}} | {
        f"steps.{name}.settings": (step or {}).get("settings") or {}
        for name, step in (config.get("steps") or {}).items()
    }
    problems = []
    for where, settings in scopes.items():
        for key, cls in (("docker", DockerSettings), ("resources", ResourceSettings)):
            if key in settings:
                try:
                    cls.model_validate(settings[key])
                except ValidationError as exc:
                    problems += [
                        f"{where}.{key}.{'.'.join(map(str, e['loc']))}: {e['msg']}"
                        for e in exc.errors()
                    ]
        if K8S_SETTINGS in settings:
            problems += [
                f"{where}.{K8S_SETTINGS}.{p}"
                for p in kubernetes_settings_problems(settings[K8S_SETTINGS])
            ]
    return problems


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m infra.k8s", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="validate the stack file and the run overlay")
    sub.add_parser("commands", help="print the zenml commands that register the stack")
    sub.add_parser("register", help="register what is missing and activate the stack")
    rc = sub.add_parser("run-config", help="write configs/<gran>.yaml + the overlay")
    rc.add_argument("gran")
    rc.add_argument("fit_steps", nargs="+", help="the run's fit steps (fit_<shard>, fit_global)")
    rc.add_argument("--threads", type=int, default=1)
    rc.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    try:
        if args.command == "run-config":
            from cryptocast.runconfig import read_run_config

            base = read_run_config(REPO_ROOT / "configs" / f"{args.gran}.yaml")
            text = yaml.safe_dump(run_config(base, args.fit_steps, args.threads), sort_keys=False)
            if args.out:
                args.out.write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text)
            return 0
        stack = load_stack()
        if args.command == "check":
            run_config({"parameters": {"config": {}}}, ["fit_global"], 1)
            print(f"{STACK_FILE.name} and {RUN_OVERLAY.name}: valid for ZenML")
        elif args.command == "commands":
            print("\n".join(register_commands(stack)))
        else:
            print("\n".join(register(stack)) or "nothing to do")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
