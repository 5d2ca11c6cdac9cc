"""deploy: act on the decision, and nothing else.

Promote: write the bundle, log it as an MLflow pyfunc, then release it
(``cryptocast.delivery.release`` through ``infra.release_adapters``): start its server,
register the version and move the ``champion`` alias (the commit), publish
``models/<gran>_models/``, store the forecasts, stop the older servers.
Keep / reject: nothing users see changes (files, registry, servers, database).
"""

from __future__ import annotations

import getpass
import shutil
from datetime import UTC, datetime
from typing import Annotated

import mlflow
import pandas as pd
from zenml import get_step_context, step

from cryptocast import failpoints
from cryptocast.config import Settings
from cryptocast.contracts import (
    LABEL_TAG,
    Calibrations,
    Decision,
    Deployment,
    Manifest,
    PairEntry,
    SourceInfo,
    model_tag,
    served_model,
    version_label,
)
from cryptocast.delivery import registry
from cryptocast.delivery.provenance import data_provenance, run_provenance
from cryptocast.locks import exclusive, lock_path
from cryptocast.modeling.backtest import Candidates, close_series, volume_series
from cryptocast.serving.bundle import staging_dir, write_bundle
from infra import deployer
from infra.release_adapters import release_for
from infra.stack import TRACKER
from infra.tracking import run_metadata


class StaleDecision(RuntimeError):
    """The champion changed between this run's evaluation and its deploy."""


def _manifest(
    cfg: Settings,
    d: Decision,
    scores: pd.DataFrame,
    calibration: Calibrations,
    version: str,
    run: dict,
    label: str,
) -> Manifest:
    by_pair = scores.set_index(["pair", "candidate"])
    return Manifest(
        granularity=cfg.granularity,
        freq=cfg.freq,
        horizon=cfg.horizon,
        interval=cfg.evaluation.interval,
        interval_lookback=cfg.evaluation.interval_lookback,
        volatility_halflife=cfg.evaluation.volatility_halflife,
        validation=cfg.validation.model_dump(mode="json"),
        model_name=cfg.deploy.model_name,
        model_version=version,
        label=label,
        limits={"max_records": cfg.service.max_records, "max_candles": cfg.service.max_candles},
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        **run,
        pairs={
            p.pair: PairEntry(
                metrics=by_pair.loc[(p.pair, p.challenger)].to_dict(),
                naive_mase=p.naive_mase,
                calibration=calibration.root[p.pair],
            )
            for p in d.pairs
        },
    )


@step(experiment_tracker=TRACKER)
def deploy(
    clean: pd.DataFrame,
    fitted: list[Candidates],
    scores: pd.DataFrame,
    decision: Decision,
    calibration: Calibrations,
    source: SourceInfo,
    cfg: Settings,
) -> Annotated[Deployment, "deployment"]:
    """Act on the decision: on PROMOTE, release the chosen candidates as the next
    version (all or nothing); on KEEP or REJECT, leave everything users see as it is."""
    d, used = decision, source.used
    data = data_provenance(source, cfg)
    name = cfg.deploy.model_name
    with exclusive(lock_path(cfg.deploy.models_dir), f"{cfg.granularity} deploy"):
        champion = registry.alias_version(name)
        if d.action != "promote":
            current = deployer.running(name, champion) if champion else None
            print(
                f"deploy: decision is {d.action.upper()}; champion v{champion} and what "
                "users see stay as they are"
            )
            url = current.prediction_url if current else None
            return Deployment(action=d.action, version=champion, url=url)
        if champion != d.champion_version:
            raise StaleDecision(
                f"the champion changed from v{d.champion_version} to v{champion} after this "
                "run evaluated against it; nothing was deployed. Run the pipeline again."
            )
        mlflow_run_id = mlflow.active_run().info.run_id
        prov = run_provenance(clean)
        run = {
            "mlflow_run_id": mlflow_run_id,
            "zenml_run_id": str(get_step_context().pipeline_run.id),
            "data_source": used,
            "provenance": data,
            **prov,
        }
        version = registry.next_version(name)
        candidates = Candidates.merge(fitted)
        chosen = {p.pair: candidates[p.pair][p.challenger] for p in d.pairs}
        label = version_label({p: served_model(fc.name, fc.kind) for p, fc in chosen.items()})
        staging = staging_dir(cfg.deploy.models_dir)
        try:
            write_bundle(
                staging,
                chosen,
                {p: close_series(clean, p) for p in chosen},
                _manifest(cfg, d, scores, calibration, version, run, label),
                volume_series(clean, sorted(chosen)),
            )
            info = registry.log_bundle(staging, model_version=version)
            failpoints.hit("deploy.after_log_model")
            tags = {
                "zenml_run_id": run["zenml_run_id"],
                "git_commit": prov["git_commit"],
                "data_fingerprint": prov["data_fingerprint"],
                "data_source": used,
                "challenger_mean_mase": f"{d.challenger_mean_mase:.6f}",
                LABEL_TAG: label,
                **{f"mase.{p.pair}": f"{p.mase:.6f}" for p in d.pairs},
                **{model_tag(p.pair): p.challenger for p in d.pairs},
                **data.tags(),
            }
            if data.until and cfg.gates.promote_backfill:
                tags["backfill_promoted_by"] = getpass.getuser()
            result = release_for(cfg).activate(
                version=version,
                pairs=sorted(chosen),
                model_uri=info.model_uri,
                register=lambda: registry.register(
                    info.model_uri, name, expected=version, tags=tags
                ),
                bundle_dir=staging,
                event="pipeline",
                reason="; ".join(d.reasons),
                run_id=mlflow_run_id,
            )
        finally:
            shutil.rmtree(staging.parent, ignore_errors=True)
    mlflow.log_metric("deploy_seconds", result.seconds_total)
    mlflow.log_metric("promote_to_answering_seconds", result.seconds_to_answer)
    mlflow.set_tags(
        {"promoted_version": version, "serving_url": result.url or "", LABEL_TAG: label}
    )
    run_metadata({"deployment": result.to_dict()})
    previous = f"v{result.previous}" if result.previous else "none"
    print(
        f"deploy: {name} v{version} is champion (previous: {previous}), serving {label}; "
        f"answering at {result.url} {result.seconds_to_answer}s after the decision"
    )
    return Deployment(action="promote", version=version, url=result.url, release=result)
