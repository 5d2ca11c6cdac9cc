"""The stack file: load and validate every component offline, the equivalent ``zenml ...
register`` commands, and registering what is missing."""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptocast.runconfig import ConfigError
from infra.k8s.settings import CLI, STACK_FILE, _read, flavor_classes, kubernetes_settings_problems


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
