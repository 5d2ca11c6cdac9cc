"""A run's configuration for the Kubernetes stack: ``configs/<gran>.yaml`` with the overlay
``configs/stacks/kubernetes-run.yaml`` merged in, validated with ZenML's schema."""

from __future__ import annotations

import contextlib
import copy
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from cryptocast.runconfig import ConfigError
from infra.k8s.settings import (
    FIT_TEMPLATE,
    K8S_SETTINGS,
    RUN_OVERLAY,
    THREAD_VARIABLES,
    _read,
    kubernetes_settings_problems,
)


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
