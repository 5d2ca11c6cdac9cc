"""Releasing a model version to users, shared by the deploy step and the CLI (promote,
rollback, serve).

    start its server (blue) -> COMMIT: register if new, move the aliases -> roll forward:
    models/<gran>_models/, forecasts in the database, stop the other servers (green)

Before the commit nothing users see has changed: a crash or a failed start leaves the
previous champion serving, its files and its forecasts. After the commit, every
roll-forward action is idempotent, and :func:`reconcile` (``make serve``) redoes whatever
a crash interrupted.
"""

from __future__ import annotations

import getpass
import json
import shutil
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import mlflow

from cryptocast import failpoints, registry, store
from cryptocast.bundle import load_bundle, publish, staging_dir
from cryptocast.config import Settings
from steps import serving
from steps.tracking import experiment_name


def _publish_version(cfg: Settings, version: str, bundle_dir: Path | None) -> None:
    """Make models/<gran>_models/ hold ``version``'s bundle (local copy or registry)."""
    final = Path(cfg.deploy.models_dir)
    manifest = final / "manifest.json"
    if manifest.exists() and _manifest_version(final) == str(version):
        return
    staging = staging_dir(final)
    try:
        if bundle_dir is None:
            bundle_dir = registry.download_bundle(cfg.deploy.model_name, version)
        shutil.copytree(bundle_dir, staging)
        publish(staging, final)
    finally:
        shutil.rmtree(staging.parent, ignore_errors=True)


def _manifest_version(models_dir: Path) -> str | None:
    try:
        return str(json.loads((Path(models_dir) / "manifest.json").read_text())["model_version"])
    except (OSError, ValueError, KeyError):
        return None


def write_forecasts(cfg: Settings, run_id: str | None = None) -> int:
    """The served bundle's forecasts for every pair, upserted into the database."""
    bundle = load_bundle(Path(cfg.deploy.models_dir))
    engine = store.connect()
    try:
        return sum(
            store.write_forecasts(
                engine,
                bundle.forecast(pair),
                granularity=cfg.granularity,
                model_name=cfg.deploy.model_name,
                run_id=run_id,
            )
            for pair in bundle.pairs
        )
    finally:
        engine.dispose()


def roll_forward(
    cfg: Settings,
    version: str,
    *,
    bundle_dir: Path | None = None,
    run_id: str | None = None,
    keep=None,
) -> dict:
    """Idempotent: files, database and servers follow the champion ``version``."""
    _publish_version(cfg, version, bundle_dir)
    rows = write_forecasts(cfg, run_id)
    retired = serving.retire_others(cfg.deploy.model_name, keep=keep) if keep else []
    return {"forecast_rows": rows, "retired_servers": retired}


def activate(
    cfg: Settings,
    *,
    version: str,
    pairs: list[str],
    model_uri: str | None = None,
    register: Callable[[], str] | None = None,
    bundle_dir: Path | None = None,
    event: str,
    reason: str,
    run_id: str | None = None,
) -> dict:
    """Serve ``version``, make it the champion, then roll forward. Returns a record."""
    name = cfg.deploy.model_name
    t0 = time.perf_counter()
    service = None
    if cfg.deploy.serve:
        service = serving.start(
            model_name=name,
            version=version,
            pairs=pairs,
            timeout_s=cfg.deploy.timeout_s,
            model_uri=model_uri,
            pipeline_name="cryptocast_training",
            step_name=event,
        )
    answering_s = time.perf_counter() - t0
    failpoints.hit("release.before_commit")
    if register is not None:
        register()
    previous = registry.set_champion(name, version)  # the commit point
    registry.tag_version(
        name,
        version,
        {
            "promoted_by": event,
            "promotion_reason": reason[:500],
            "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "promoted_by_user": getpass.getuser(),
        },
    )
    failpoints.hit("release.after_commit")
    done = roll_forward(cfg, version, bundle_dir=bundle_dir, run_id=run_id, keep=service)
    return {
        "event": event,
        "version": version,
        "previous": previous,
        "url": service.prediction_url if service else None,
        "seconds_to_answer": round(answering_s, 2),
        "seconds_total": round(time.perf_counter() - t0, 2),
        **done,
    }


def reconcile(cfg: Settings, *, restart: bool = False) -> dict:
    """Bring files, database and servers in line with the registry's champion (after a
    crash, or to start the champion again). ``restart`` starts a fresh server first."""
    name = cfg.deploy.model_name
    version = registry.alias_version(name)
    if version is None:
        return {"champion": None}
    service = None
    if cfg.deploy.serve:
        service = None if restart else serving.running(name, version)
        if service is None:  # restart: the new server starts beside the old one
            service = serving.start(
                model_name=name,
                version=version,
                pairs=registry.version_pairs(name, version),
                timeout_s=cfg.deploy.timeout_s,
                reuse=not restart,
            )
    done = roll_forward(cfg, version, keep=service)
    return {"champion": version, "url": service.prediction_url if service else None, **done}


def record_event(cfg: Settings, event: str, result: dict, reason: str) -> None:
    """A person's promotion or rollback, as its own MLflow run in the granularity's
    experiment (tags ``event``, ``from_version``, ``to_version``, ``user``)."""
    mlflow.set_experiment(experiment_name(cfg.granularity))
    with mlflow.start_run(run_name=f"{event}-v{result['version']}"):
        mlflow.set_tags(
            {
                "event": event,
                "from_version": str(result.get("previous")),
                "to_version": str(result["version"]),
                "user": getpass.getuser(),
                "reason": reason[:500],
                "granularity": cfg.granularity,
                "decision": event,
            }
        )
        mlflow.log_dict(result | {"reason": reason}, f"{event}.json")
