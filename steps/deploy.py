"""deploy: act on the decision. Promote = register in MLflow, serve (blue/green), write
``models/<gran>_models/``, move the ``champion`` alias. Keep/reject = change nothing."""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from typing import Annotated

import mlflow
import pandas as pd
from zenml import get_step_context, step

from cryptocast import registry
from cryptocast.bundle import publish, staging_dir, write_bundle
from cryptocast.config import Settings
from cryptocast.contracts import Decision
from cryptocast.provenance import run_provenance
from cryptocast.workflow import Candidates, close_series
from steps import serving
from steps.tracking import run_metadata


@step(enable_cache=False)
def deploy(
    clean: pd.DataFrame,
    candidates: Candidates,
    scores: pd.DataFrame,
    decision: dict,
    source: dict,
    cfg: Settings,
) -> Annotated[dict, "deployment"]:
    d = Decision.model_validate(decision)
    name = cfg.deploy.model_name
    if d.action != "promote":
        current = serving.running(name)
        msg = (
            f"deploy: decision is {d.action.upper()}; champion v{d.champion_version} and "
            f"its server stay as they are"
        )
        print(msg)
        return {
            "action": d.action,
            "version": d.champion_version,
            "url": current.prediction_url if current else None,
        }

    t0 = time.perf_counter()
    ctx = get_step_context()
    version = registry.next_version(name)
    by_pair = scores.set_index(["pair", "candidate"])
    prov = run_provenance(clean)
    manifest = {
        "format": 1,
        "granularity": cfg.granularity,
        "freq": cfg.freq,
        "horizon": cfg.horizon,
        "interval": cfg.evaluation.interval,
        "interval_lookback": cfg.evaluation.interval_lookback,
        "model_name": name,
        "model_version": version,
        "mlflow_run_id": mlflow.active_run().info.run_id,
        "zenml_run_id": str(ctx.pipeline_run.id),
        "data_source": source["used"],
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        **prov,
        "pairs": {
            p.pair: {
                "metrics": by_pair.loc[(p.pair, p.challenger)].to_dict(),
                "naive_mase": p.naive_mase,
            }
            for p in d.pairs
        },
    }
    chosen = {p.pair: candidates[p.pair][p.challenger] for p in d.pairs}
    histories = {pair: close_series(clean, pair) for pair in chosen}
    staging = staging_dir(cfg.deploy.models_dir)
    try:
        write_bundle(staging, chosen, histories, manifest)
        info = registry.log_bundle(staging, model_version=version)
        tags = {
            "zenml_run_id": manifest["zenml_run_id"],
            "git_commit": prov["git_commit"],
            "data_fingerprint": prov["data_fingerprint"],
            "data_source": source["used"],
            "challenger_mean_mase": f"{d.challenger_mean_mase:.6f}",
            **{f"mase.{p.pair}": f"{p.mase:.6f}" for p in d.pairs},
            **{f"model.{p.pair}": p.challenger for p in d.pairs},
        }
        registry.register(info.model_uri, name, expected=version, tags=tags)
        service = None
        if cfg.deploy.serve:
            service = serving.start(
                model_name=name,
                version=version,
                pairs=sorted(chosen),
                pipeline_name=ctx.pipeline.name,
                step_name=ctx.step_run.name,
                timeout_s=cfg.deploy.timeout_s,
            )
        publish(staging, cfg.deploy.models_dir)
    finally:
        shutil.rmtree(staging.parent, ignore_errors=True)
    previous = registry.set_champion(name, version)
    retired = serving.retire_others(name, keep=service) if service else []
    seconds = time.perf_counter() - t0
    url = service.prediction_url if service else None
    result = {
        "action": "promote",
        "version": version,
        "previous": previous,
        "url": url,
        "retired_servers": retired,
        "models_dir": str(cfg.deploy.models_dir),
        "deploy_seconds": round(seconds, 2),
    }
    mlflow.log_metric("deploy_seconds", seconds)
    mlflow.set_tags({"promoted_version": version, "serving_url": url or ""})
    run_metadata({"deployment": result})
    print(f"deploy: {name} v{version} is champion (previous: {previous}); serving at {url}")
    return result
