"""MLflow Model Registry operations: versions, the ``champion``/``previous`` aliases,
and logging a bundle as a pyfunc model. Knows MLflow, not ZenML."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import DataType

from cryptocast.contracts import (
    LABEL_TAG,
    SERVED_SCHEMA,
    Provenance,
    pairs_from_tags,
    request_example,
)
from cryptocast.paths import LOCKFILE, PACKAGE_DIR
from cryptocast.serving.bundle import Bundle, load_bundle, read_manifest

CHAMPION, PREVIOUS = "champion", "previous"
SERVING_MODULE = PACKAGE_DIR / "serving" / "model.py"

# MLflow column types of the contract's Python types (timestamps travel as ISO strings)
_MLFLOW_TYPES = {
    str: DataType.string,
    int: DataType.long,
    float: DataType.double,
    pd.Timestamp: DataType.string,
}
SIGNATURE = ModelSignature(
    inputs=Schema(
        [
            ColSpec(DataType.string, "pair"),
            ColSpec(DataType.long, "horizon", required=False),
            ColSpec(DataType.string, "candles", required=False),
        ]
    ),
    outputs=Schema([ColSpec(_MLFLOW_TYPES[t], c) for c, t in SERVED_SCHEMA.items()]),
)


def client() -> mlflow.MlflowClient:
    """An MLflow client of the tracking and registry URIs configured now."""
    return mlflow.MlflowClient()


def alias_version(name: str, alias: str = CHAMPION) -> str | None:
    """Version number holding ``alias``, or None (also when the model does not exist)."""
    try:
        return str(client().get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def next_version(name: str) -> str:
    """The version number the next registration of ``name`` will get (``1`` for a model not
    registered yet)."""
    try:
        versions = client().search_model_versions(f"name='{name}'")
    except MlflowException:
        return "1"
    return str(max((int(v.version) for v in versions), default=0) + 1)


def download_bundle(name: str, version: str) -> Path:
    """Local directory of a registered version's bundle."""
    local = mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}")
    return Path(local) / "artifacts" / "bundle"


def load_version_bundle(name: str, version: str) -> Bundle:
    """Download a registered version and load its bundle (to re-score a champion)."""
    return load_bundle(download_bundle(name, version))


def version_run_id(name: str, version: str) -> str:
    """The MLflow run that logged a registered version (its identity, with name and
    version, as its server reports it)."""
    return str(client().get_model_version(name, str(version)).run_id)


def version_source(name: str, version: str) -> str:
    """The logged model a registered version points to (``models:/m-...``): the identity
    of what a server serves, whichever alias or version number led to it."""
    return client().get_model_version(name, str(version)).source


def version_pairs(name: str, version: str) -> list[str]:
    """The pairs a registered version serves (its ``model.<pair>`` tags)."""
    return pairs_from_tags(client().get_model_version(name, version).tags or {})


def version_provenance(name: str, version: str) -> Provenance:
    """What a registered version was trained on (its ``data.*`` tags)."""
    return Provenance.from_tags(client().get_model_version(name, version).tags or {})


def tag_version(name: str, version: str, tags: dict[str, str]) -> None:
    """Set ``tags`` on ``version`` of ``name`` (values as strings)."""
    c = client()
    for key, value in tags.items():
        c.set_model_version_tag(name, version, key, str(value))


def label(name: str, version: str) -> str | None:
    """What ``version`` of ``name`` serves in words (``baseline: random walk``, ...);
    None for versions registered before labels."""
    return (client().get_model_version(name, str(version)).tags or {}).get(LABEL_TAG)


def require_version(name: str, version: str) -> None:
    """Raise a clear error unless ``version`` of ``name`` is registered."""
    try:
        client().get_model_version(name, str(version))
    except MlflowException:
        known = [str(v) for v in sorted(version_table(name).get("version", []))]
        raise ValueError(f"{name} has no version {version}; registered: {known}") from None


def pyfunc_spec(bundle_dir: Path, model_version: str) -> dict:
    """How a bundle becomes an MLflow pyfunc (models from code, with its own source), with
    a request of its own pairs as the input example."""
    return {
        "python_model": str(SERVING_MODULE),
        "artifacts": {"bundle": str(bundle_dir)},
        "code_paths": [str(PACKAGE_DIR)],
        "signature": SIGNATURE,
        "input_example": request_example(read_manifest(bundle_dir)),
        "model_config": {"model_version": model_version},
        # the exact environment, instead of MLflow loading the model in a subprocess to
        # guess it (slow, and it only finds the top-level imports)
        "pip_requirements": str(LOCKFILE),
    }


def log_bundle(bundle_dir: Path, *, model_version: str):
    """Log ``bundle_dir`` as a pyfunc model in the active run."""
    return mlflow.pyfunc.log_model(name="model", **pyfunc_spec(bundle_dir, model_version))


def register(model_uri: str, name: str, *, expected: str, tags: dict[str, str]) -> str:
    """Register ``model_uri`` as a new version of ``name``; it must get ``expected``."""
    mv = mlflow.register_model(model_uri, name, tags=tags)
    if str(mv.version) != expected:
        raise RuntimeError(
            f"registry gave {name} version {mv.version}, expected {expected}: another run "
            "registered a version concurrently; the new version is not promoted"
        )
    return str(mv.version)


def set_champion(name: str, version: str) -> str | None:
    """Move ``champion`` to ``version`` and ``previous`` to the old champion; return it."""
    old = alias_version(name, CHAMPION)
    c = client()
    if old is not None and old != version:
        c.set_registered_model_alias(name, PREVIOUS, old)
    c.set_registered_model_alias(name, CHAMPION, version)
    return old


def version_table(name: str) -> pd.DataFrame:
    """Every version with its aliases and tags, newest first."""
    c = client()
    try:
        versions = c.search_model_versions(f"name='{name}'")
        aliases = c.get_registered_model(name).aliases or {}  # alias -> version
    except MlflowException:
        return pd.DataFrame()
    rows = [
        {
            "version": int(v.version),
            "aliases": ",".join(a for a, ver in aliases.items() if str(ver) == str(v.version)),
            "run_id": v.run_id,
            **(v.tags or {}),
        }
        for v in versions
    ]
    return pd.DataFrame(rows).sort_values("version", ascending=False)
