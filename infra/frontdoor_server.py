"""The front door's own process: the router bound to the real parts, served by uvicorn.

* :class:`RegistryChampions`: the champion from the MLflow Model Registry, its servers from
  ZenML's MLflow model deployer (the router checks their identity before using one);
* :func:`run`: the front door in this process (``cryptocast front-run``, started by
  ``infra.frontdoor.launch``).
"""

from __future__ import annotations

import gc
import os
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptocast.config import Settings
from cryptocast.contracts import LABEL_TAG, served_model
from cryptocast.delivery import registry
from cryptocast.delivery.release import published_manifest
from cryptocast.observability.monitoring import live_from_metrics
from cryptocast.serving.bundle import load_histories
from cryptocast.serving.frontdoor.router import Identity
from infra import deployer
from infra.exporter_state import last_run
from infra.frontdoor import TOKEN_ENV
from infra.tracking import MONITORING_PIPELINE, TRAINING_PIPELINE

# registry tags of a version that say what it was trained on and how it became champion
TRAINED_TAGS = (
    LABEL_TAG,
    "data_source",
    "data_fingerprint",
    "git_commit",
    "zenml_run_id",
    "challenger_mean_mase",
    "promoted_by",
    "promoted_at",
    "promotion_reason",
)


@dataclass
class RegistryChampions:
    """:class:`cryptocast.serving.frontdoor.router.Champions` of one registered model.

    The router asks for the champion and its servers every ``check_interval_s``. The
    champion is one registry query; the servers are listed again only when the records
    changed (a server started, stopped or was deleted: one small query tells), when the
    champion changed, and at least every ``LIST_EVERY_S`` (a server that died with no
    record change; traffic notices a dead server at once anyway)."""

    cfg: Settings
    _known: dict[str, Identity] = field(default_factory=dict)  # versions never change
    # (records mark, version, when listed, URLs of that version's running servers)
    _listed: tuple[tuple[int, str], str, float, list[str]] | None = None
    LIST_EVERY_S = 10.0

    @property
    def name(self) -> str:
        return self.cfg.deploy.model_name

    def champion(self) -> Identity | None:
        version = registry.alias_version(self.name)
        if version is None:
            return None
        if version not in self._known:
            self._known[version] = Identity(
                model_name=self.name,
                version=version,
                run_id=registry.version_run_id(self.name, version),
                pairs=tuple(registry.version_pairs(self.name, version)),
            )
        return self._known[version]

    def servers(self, identity: Identity) -> list[str]:
        mark, now = deployer.records_mark(), time.monotonic()
        if self._listed is not None:
            old_mark, version, listed_at, urls = self._listed
            if (old_mark, version) == (mark, identity.version) and (
                now - listed_at < self.LIST_EVERY_S
            ):
                return urls
        urls = [
            s.prediction_url
            for s in deployer.servers(self.name)  # newest first
            if s.is_running
            and s.prediction_url
            and s.config.registry_model_version == identity.version
        ]
        self._listed = (mark, identity.version, now, urls)
        return urls

    def replace(self, identity: Identity) -> str:
        service = deployer.start(
            model_name=self.name,
            version=identity.version,
            pairs=list(identity.pairs),
            timeout_s=self.cfg.deploy.timeout_s,
            pipeline_name=TRAINING_PIPELINE,
            step_name="front-door-restart",
            reuse=False,
        )
        return service.prediction_url

    def retire_others(self, identity: Identity, keep_url: str) -> None:
        for svc in deployer.servers(self.name):
            if svc.prediction_url != keep_url:
                deployer.delete(svc)

    def trained(self, identity: Identity) -> dict[str, Any]:
        """What the registry says of how a version was trained and promoted."""
        tags = registry.client().get_model_version(self.name, identity.version).tags or {}
        return {k: tags[k] for k in TRAINED_TAGS if k in tags}

    def card(self, identity: Identity, recent: int = 168) -> dict[str, Any]:
        """The champion's model card: backtest metrics and recent closes from the
        published bundle (when it holds that version), live accuracy from the last
        monitoring run, and every version's promotion record."""
        out: dict[str, Any] = {"backtest": {}, "history": {}, "live": {}}
        models_dir = self.cfg.deploy.models_dir
        manifest = published_manifest(models_dir)
        if manifest is not None and manifest.model_version == identity.version:
            out["label"] = manifest.label
            for pair, e in manifest.pairs.items():
                out["backtest"][pair] = {
                    "candidate": e.candidate,
                    "model": served_model(e.candidate, e.kind),
                    "mase": e.metrics.get("mase"),
                    "naive_mase": e.naive_mase,
                    "coverage": e.metrics.get("coverage"),
                    "interval_score": e.metrics.get("interval_score"),
                }
            for pair, closes in load_histories(models_dir, manifest).items():
                tail = closes.tail(recent)
                out["history"][pair] = [
                    {"timestamp": t.isoformat(), "close": float(c)} for t, c in tail.items()
                ]
        monitor = last_run(self.cfg, MONITORING_PIPELINE)
        if monitor is not None:
            out["live"] = live_from_metrics(monitor.data.metrics, identity.pairs)
            tags = monitor.data.tags
            out["monitoring"] = {
                "at": datetime.fromtimestamp(monitor.info.start_time / 1000, UTC).isoformat(
                    timespec="seconds"
                ),
                "status": monitor.info.status,
                "decision": tags.get("monitor_decision"),
                "reasons": tags.get("monitor_reasons"),
            }
        table = registry.version_table(self.name)
        shown = ["version", "aliases", LABEL_TAG, "promoted_by", "promoted_at", "promotion_reason",
                 "data_source", "challenger_mean_mase"]  # fmt: skip
        out["promotions"] = (
            table.reindex(columns=shown).fillna("").astype(str).to_dict("records")
            if not table.empty
            else []
        )
        return out


def run(cfg: Settings) -> None:
    """Serve the front door of ``cfg`` in this process until it is stopped."""
    from cryptocast.observability import telemetry

    metrics = None
    if telemetry.multiprocess_metrics_dir() is not None:  # before prometheus_client loads
        metrics = telemetry.FrontDoorMetrics(cfg.granularity)
    import uvicorn

    from cryptocast.serving.frontdoor.app import create_app
    from cryptocast.serving.frontdoor.router import Router
    from cryptocast.serving.frontdoor.transport import HttpTransport
    from infra.stack import configure_mlflow

    configure_mlflow()
    champions = RegistryChampions(cfg)
    s = cfg.service
    router = Router(
        champions,
        HttpTransport(),
        timeout_s=s.upstream_timeout_s,
        check_interval_s=s.check_interval_s,
        restart_wait_s=s.restart_wait_s,
        events=metrics,
    )
    app = create_app(
        cfg,
        router,
        record=metrics.request if metrics else None,
        trained=lambda up: champions.trained(up.identity),
        card=lambda up: champions.card(up.identity),
        instance=os.environ.get(TOKEN_ENV),
    )
    # ZenML, MLflow, SQLAlchemy and pandas leave ~0.5 M objects behind: a full collection
    # walking them paused requests for 50-600 ms. They live as long as the process, so
    # they are moved out of the collector's sight once, here, after start-up.
    gc.collect()
    gc.freeze()
    router.start()
    try:
        uvicorn.run(app, host=s.host, port=s.port, log_level="warning", access_log=False)
    finally:
        router.stop()
