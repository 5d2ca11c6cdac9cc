"""Where the project's files are: the one module that knows the checkout's layout.

Relative paths in a run configuration (``deploy.models_dir``, ``data.cache_dir``, ...) are
relative to the repository root, whatever the working directory of the process that reads
them (the CLI, a step, a test): :func:`resolve` makes them absolute.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent.parent
LOCKFILE = REPO_ROOT / "requirements.lock"
LOGS_DIR = REPO_ROOT / "logs"
ZENML_HOME = REPO_ROOT / ".zenml-home"  # the Makefile's default ZENML_CONFIG_PATH

CONFIG_DIR_ENV = "CRYPTOCAST_CONFIG_DIR"
METRICS_DIR_ENV = "CRYPTOCAST_METRICS_DIR"


def resolve(path: str | Path) -> Path:
    """``path`` made absolute against the repository root (absolute paths unchanged)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def config_dir() -> Path:
    """The granularities' run configurations: ``$CRYPTOCAST_CONFIG_DIR`` or ``configs/``."""
    return Path(os.environ.get(CONFIG_DIR_ENV) or REPO_ROOT / "configs")


def granularity_config(granularity: str, override: str | Path | None = None) -> Path:
    """``override`` if given, else ``<config_dir>/<granularity>.yaml``."""
    if override:
        return Path(override).resolve()
    return config_dir() / f"{granularity}.yaml"


def pipeline_config(pipeline: str) -> Path:
    """ZenML run options of a pipeline that are the same for every granularity
    (``configs/pipelines/<pipeline>.yaml``)."""
    return REPO_ROOT / "configs" / "pipelines" / f"{pipeline}.yaml"


def metrics_dir() -> Path:
    """Where served models write their Prometheus counters (``$CRYPTOCAST_METRICS_DIR``,
    default ``.metrics/`` in the checkout)."""
    return Path(os.environ.get(METRICS_DIR_ENV) or REPO_ROOT / ".metrics")
