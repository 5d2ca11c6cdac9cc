"""Releasing a model version to users: the state machine, behind two small protocols.

    start its server (blue) -> COMMIT: register if new, move the aliases -> roll forward:
    models/<gran>_models/, forecasts in the database, stop the other servers (green)

Before the commit nothing users see has changed: a crash or a failed start leaves the
previous champion serving, its files and its forecasts. After the commit, every
roll-forward action is idempotent, and :meth:`Release.reconcile` (``make serve``) redoes
whatever a crash interrupted.

The registry and the model servers are protocols: ``infra.release_adapters`` binds them to the
MLflow Model Registry and ZenML's MLflow model deployer; the unit tests bind them to fakes
and crash the procedure at each failpoint in milliseconds.
"""

from __future__ import annotations

import getpass
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import pandas as pd

from cryptocast import failpoints
from cryptocast.config import Settings
from cryptocast.contracts import Manifest, ReconcileRecord, ReleaseRecord
from cryptocast.delivery import store
from cryptocast.errors import UserError
from cryptocast.serving.bundle import MANIFEST, load_bundle, publish, staging_dir


class ReleaseIncomplete(RuntimeError):
    """The new version is champion (committed) but rolling forward to it failed, even
    after retries; ``reconcile`` (``make serve``) finishes it."""


class ReleaseError(UserError, ValueError):
    """A release a person asked for cannot be made (unknown version, nothing to roll back
    to). Nothing was changed."""


class Server(Protocol):
    """A running model server."""

    @property
    def prediction_url(self) -> str | None:
        """The URL its ``/invocations`` answers at, or None when it has none yet."""


class Servers(Protocol):
    """The model servers of one registered model."""

    def start(
        self, *, version: str, pairs: list[str], model_uri: str | None, event: str, restart: bool
    ) -> Server:
        """A server of ``version`` that answered for every pair (reused if one runs,
        unless ``restart``)."""

    def running(self, version: str) -> Server | None:
        """The running server of ``version``, if any."""

    def retire_others(self, keep: Server | None) -> list[str]:
        """Stop every server but ``keep``; return the versions they served."""

    def forecasts(self, server: Server, pairs: list[str]) -> list[pd.DataFrame] | None:
        """``server``'s forecasts of every pair from its stored history (lookups it
        computed when it loaded), or None where it cannot be asked."""


class Registry(Protocol):
    """The registered versions of one model and its ``champion``/``previous`` aliases."""

    def champion(self) -> str | None:
        """The version holding the ``champion`` alias, or None."""

    def previous(self) -> str | None:
        """The version holding the ``previous`` alias (what a rollback returns to), or None."""

    def require(self, version: str) -> None:
        """Raise ``ValueError`` naming the registered versions unless ``version`` is one."""

    def set_champion(self, version: str) -> str | None:
        """Move ``champion`` to ``version`` (the commit point); return the old champion."""

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        """Set ``tags`` on ``version``."""

    def version_pairs(self, version: str) -> list[str]:
        """The pairs ``version`` serves."""

    def download_bundle(self, version: str) -> Path:
        """A local directory holding ``version``'s bundle."""


class FrontDoor(Protocol):
    """The stable address users call (``cryptocast.serving.frontdoor``)."""

    def prepare(self) -> None:
        """Start it in the background if it does not run (without waiting): a release
        calls this before its model server starts, so the two start side by side."""

    def follow(self, version: str, server_url: str | None) -> bool:
        """Make sure it runs, and wait until it answers as ``version`` from that server;
        False if it did not in time."""


def published_manifest(models_dir: Path) -> Manifest | None:
    """The manifest of the bundle published in ``models_dir``, or None."""
    try:
        return Manifest.model_validate_json((Path(models_dir) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def published_version(models_dir: Path) -> str | None:
    """The version of the bundle published in ``models_dir``, or None."""
    manifest = published_manifest(models_dir)
    return manifest.model_version if manifest else None


@dataclass
class Release:
    """The release procedure of one granularity's model."""

    cfg: Settings
    registry: Registry
    servers: Servers
    front: FrontDoor | None = None
    ROLL_FORWARD_ATTEMPTS = 3
    ROLL_FORWARD_BACKOFF_S = 1.0

    @property
    def models_dir(self) -> Path:
        """The directory that holds the served bundle (``deploy.models_dir``)."""
        return self.cfg.deploy.models_dir

    def publish_version(self, version: str, bundle_dir: Path | None = None) -> None:
        """Make ``models_dir`` hold ``version``'s bundle (a local copy or the registry's)."""
        if published_version(self.models_dir) == str(version):
            return
        staging = staging_dir(self.models_dir)
        try:
            if bundle_dir is None:
                bundle_dir = self.registry.download_bundle(version)
            shutil.copytree(bundle_dir, staging)
            publish(staging, self.models_dir)
        finally:
            shutil.rmtree(staging.parent, ignore_errors=True)

    def store_bundle_forecasts(
        self, run_id: str | None = None, server: Server | None = None
    ) -> int:
        """The published bundle's forecasts for every pair, upserted into the database:
        asked of ``server`` (it computed them when it loaded the same bundle), else
        computed here (loading the models: seconds for a torch model)."""
        manifest = published_manifest(self.models_dir)
        pairs = sorted(manifest.pairs) if manifest else []
        frames = self.servers.forecasts(server, pairs) if server is not None and pairs else None
        if frames is None:
            bundle = load_bundle(self.models_dir)
            frames = [bundle.forecast(pair) for pair in bundle.pairs]
        engine = store.connect()
        try:
            return sum(
                store.write_forecasts(
                    engine,
                    frame,
                    granularity=self.cfg.granularity,
                    model_name=self.cfg.deploy.model_name,
                    run_id=run_id,
                )
                for frame in frames
            )
        finally:
            engine.dispose()

    def roll_forward(
        self,
        version: str,
        *,
        bundle_dir: Path | None = None,
        run_id: str | None = None,
        keep: Server | None = None,
    ) -> tuple[int, list[str]]:
        """Idempotent: files, database and servers follow the champion ``version``: the
        front door moves to ``keep`` (the champion's server), then the other servers stop.
        Returns (forecast rows written, versions of the servers retired)."""
        self.publish_version(version, bundle_dir)
        rows = self.store_bundle_forecasts(run_id, keep)
        front, url = self.front, keep.prediction_url if keep is not None else None
        if front is not None and url is not None and not front.follow(version, url):
            keep = None  # users may still be served by an older server: keep it
        retired = self.servers.retire_others(keep) if keep is not None else []
        return rows, retired

    def activate(
        self,
        *,
        version: str,
        pairs: list[str],
        event: str,
        reason: str,
        model_uri: str | None = None,
        register: Callable[[], str] | None = None,
        bundle_dir: Path | None = None,
        run_id: str | None = None,
    ) -> ReleaseRecord:
        """Serve ``version``, make it the champion, then roll forward."""
        t0 = time.perf_counter()
        service = None
        if self.cfg.deploy.serve:
            if self.front is not None:
                self.front.prepare()
            service = self.servers.start(
                version=version, pairs=pairs, model_uri=model_uri, event=event, restart=False
            )
        answering_s = time.perf_counter() - t0
        failpoints.hit("release.before_commit")
        if register is not None:
            register()
        previous = self.registry.set_champion(version)  # the commit point
        self.registry.tag_version(
            version,
            {
                "promoted_by": event,
                "promotion_reason": reason[:500],
                "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "promoted_by_user": getpass.getuser(),
            },
        )
        failpoints.hit("release.after_commit")
        rows, retired = self._finish(version, bundle_dir=bundle_dir, run_id=run_id, keep=service)
        return ReleaseRecord(
            event=event,
            version=version,
            previous=previous,
            url=service.prediction_url if service else None,
            seconds_to_answer=round(answering_s, 2),
            seconds_total=round(time.perf_counter() - t0, 2),
            forecast_rows=rows,
            retired_servers=retired,
        )

    def _finish(self, version: str, **kw) -> tuple[int, list[str]]:
        """Roll forward after the commit; retried, since the version is live already."""
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.roll_forward(version, **kw)
            except Exception as exc:
                if attempt >= self.ROLL_FORWARD_ATTEMPTS:
                    raise ReleaseIncomplete(
                        f"v{version} of {self.cfg.deploy.model_name} is the champion and "
                        f"answers, but finishing the release failed {attempt} times "
                        f"({type(exc).__name__}: {exc}); `make serve "
                        f"GRAN={self.cfg.granularity}` finishes it (files, forecasts, older "
                        "servers)"
                    ) from exc
                time.sleep(self.ROLL_FORWARD_BACKOFF_S * attempt)

    def reconcile(self, *, restart: bool = False) -> ReconcileRecord:
        """Bring files, database and servers in line with the registry's champion (after a
        crash, or to start the champion again). ``restart`` starts a fresh server first,
        beside the old one, which is retired once the new one answers."""
        version = self.registry.champion()
        if version is None:
            return ReconcileRecord(champion=None)
        service = None
        if self.cfg.deploy.serve:
            service = None if restart else self.servers.running(version)
            if service is None:
                service = self.servers.start(
                    version=version,
                    pairs=self.registry.version_pairs(version),
                    model_uri=None,
                    event="serve",
                    restart=restart,
                )
        rows, retired = self.roll_forward(version, keep=service)
        return ReconcileRecord(
            champion=version,
            url=service.prediction_url if service else None,
            forecast_rows=rows,
            retired_servers=retired,
        )

    def change_champion(
        self, version: str | None, *, event: str, reason: str
    ) -> ReleaseRecord | ReconcileRecord:
        """A person's promotion (``version``) or rollback (``version`` None: to
        ``previous``). Making the champion champion again only makes sure it is served."""
        if version is None:
            version = self.registry.previous()
            if version is None:
                raise ReleaseError(
                    f"{self.cfg.deploy.model_name} has no previous version to roll back to"
                )
        try:
            self.registry.require(version)
        except ValueError as exc:
            raise ReleaseError(str(exc)) from None
        if version == self.registry.champion():
            return self.reconcile()
        return self.activate(
            version=version,
            pairs=self.registry.version_pairs(version),
            event=event,
            reason=reason,
        )
