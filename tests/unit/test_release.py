"""The release state machine (``cryptocast.delivery.release``) with a fake registry and fake model
servers, and real bundles, files and a real SQLite forecast store: a crash at each
failpoint, a server that cannot start, roll-forward idempotence, promotions and rollbacks.
What users see (champion, published bundle, stored forecasts, answering server) is
checked after each. The same procedure against the real registry and deployer, killed by
SIGKILL, is tests/e2e/test_delivery_e2e.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cryptocast import failpoints
from cryptocast.contracts import Manifest, ReconcileRecord, ReleaseRecord
from cryptocast.delivery import store
from cryptocast.delivery.release import Release, ReleaseError, ReleaseIncomplete, published_version
from cryptocast.modeling.forecasting import Forecaster
from cryptocast.runconfig import apply_overrides
from cryptocast.serving.bundle import write_bundle
from tests.conftest import raw_config

PAIRS = {"1": ["BTC/USDT"], "2": ["BTC/USDT", "ETH/USDT"], "3": ["BTC/USDT", "ETH/USDT"]}


class Crash(BaseException):
    """A process killed at a failpoint (BaseException: no ``except Exception`` stops it)."""


class StartFailed(RuntimeError):
    pass


@dataclass
class FakeServer:
    version: str
    serial: int

    @property
    def prediction_url(self) -> str:
        return f"http://127.0.0.1:{9000 + self.serial}/invocations"


@dataclass
class FakeServers:
    live: list[FakeServer] = field(default_factory=list)
    broken: set[str] = field(default_factory=set)  # versions whose server cannot start
    started: int = 0

    def start(self, *, version, pairs, model_uri, event, restart):
        if version in self.broken:
            raise StartFailed(f"server of v{version} did not start")
        if not restart and (running := self.running(version)):
            return running
        self.started += 1
        server = FakeServer(version, self.started)
        self.live.append(server)
        return server

    def running(self, version):
        return next((s for s in reversed(self.live) if s.version == version), None)

    def retire_others(self, keep):
        gone = [s.version for s in self.live if s is not keep]
        self.live = [s for s in self.live if s is keep]
        return gone

    def forecasts(self, server, pairs):
        return None  # no HTTP behind these servers: the release computes them itself


@dataclass
class FakeRegistry:
    bundles: dict[str, Path]
    registered: set[str] = field(default_factory=set)
    aliases: dict[str, str] = field(default_factory=dict)
    tags: dict[str, dict[str, str]] = field(default_factory=dict)

    def champion(self):
        return self.aliases.get("champion")

    def previous(self):
        return self.aliases.get("previous")

    def require(self, version):
        if version not in self.registered:
            raise ValueError(
                f"model has no version {version}; registered: {sorted(self.registered)}"
            )

    def set_champion(self, version):
        old = self.champion()
        if old is not None and old != version:
            self.aliases["previous"] = old
        self.aliases["champion"] = version
        return old

    def tag_version(self, version, tags):
        self.tags.setdefault(version, {}).update(tags)

    def version_pairs(self, version):
        return PAIRS[version]

    def download_bundle(self, version):
        return self.bundles[version]


def _bundle(path: Path, version: str) -> Path:
    idx = pd.date_range("2024-01-01", periods=120, freq="h", tz="UTC")
    rng = np.random.default_rng(int(version))
    histories = {
        p: pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.01, 120))), index=idx)
        for p in PAIRS[version]
    }
    fcs = {p: Forecaster.build("drift", "drift", {}, 6, 0).fit(h) for p, h in histories.items()}
    manifest = Manifest(
        granularity="hour", freq="1h", horizon=6, interval=0.8, interval_lookback=48,
        model_name="release-test", model_version=version,
    )  # fmt: skip
    return write_bundle(path / f"v{version}", fcs, histories, manifest)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("bundles")
    return {v: _bundle(tmp, v) for v in PAIRS}


@pytest.fixture
def release(tmp_path, bundles, monkeypatch) -> Release:
    """Release of a fresh granularity whose champion is v1 (published and served)."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'forecasts.db'}")
    raw = raw_config("hour")
    raw["deploy"].update(model_name="release-test", models_dir=str(tmp_path / "hour_models"))
    r = Release(apply_overrides(raw), FakeRegistry(bundles), FakeServers())
    r.registry.registered.add("1")
    r.activate(version="1", pairs=PAIRS["1"], event="pipeline", reason="first")
    return r


@pytest.fixture
def crash_at(monkeypatch):
    """``crash_at(name)``: the next ``failpoints.hit(name)`` kills the procedure there."""

    def arm(name: str) -> None:
        def hit(point: str) -> None:
            if point == name:
                raise Crash(point)

        monkeypatch.setattr(failpoints, "hit", hit)

    return arm


def seen(r: Release) -> dict:
    """What users see: champion, published bundle, stored forecasts, answering server."""
    engine = store.connect()
    rows = store.read_forecasts(engine, "hour", "release-test")
    engine.dispose()
    answering = [s.version for s in r.servers.live]
    return {
        "champion": r.registry.champion(),
        "previous": r.registry.previous(),
        "published": published_version(r.models_dir),
        "forecasts": sorted(set(zip(rows["pair"], rows["model_version"], strict=True))),
        "rows": len(rows),
        "answering": answering,
    }


def promote(r: Release, version: str, **kw) -> ReleaseRecord:
    def register() -> str:
        r.registry.registered.add(version)
        return version

    return r.activate(
        version=version, pairs=PAIRS[version], event="pipeline", reason="test",
        register=register, bundle_dir=r.registry.bundles[version], **kw,
    )  # fmt: skip


def test_first_release_publishes_serves_and_stores(release):
    assert seen(release) == {
        "champion": "1",
        "previous": None,
        "published": "1",
        "forecasts": [("BTC/USDT", "1")],
        "rows": 6,
        "answering": ["1"],
    }
    assert release.registry.tags["1"]["promoted_by"] == "pipeline"


def test_promotion_moves_everything_to_the_new_version(release):
    record = promote(release, "2")
    assert (record.version, record.previous, record.retired_servers) == ("2", "1", ["1"])
    assert record.forecast_rows == 12
    assert record.url == release.servers.running("2").prediction_url
    s = seen(release)
    assert (s["champion"], s["previous"], s["published"], s["answering"]) == ("2", "1", "2", ["2"])
    assert {("BTC/USDT", "2"), ("ETH/USDT", "2")} <= set(s["forecasts"])


def test_crash_before_the_commit_changes_nothing_users_see(release, crash_at):
    before = seen(release)
    crash_at("release.before_commit")
    with pytest.raises(Crash):
        promote(release, "2")
    after = seen(release)
    # the new (blue) server was up; users still get v1 everywhere
    assert after | {"answering": before["answering"]} == before
    assert "1" in after["answering"]
    assert "2" not in release.registry.registered


def test_register_failing_changes_nothing_users_see(release):
    before = seen(release)

    def register() -> str:
        raise RuntimeError("another run registered a version concurrently")

    with pytest.raises(RuntimeError, match="concurrently"):
        release.activate(
            version="2", pairs=PAIRS["2"], event="pipeline", reason="t", register=register
        )
    assert seen(release) | {"answering": before["answering"]} == before


def test_a_server_that_cannot_start_keeps_the_old_one(release):
    before = seen(release)
    release.servers.broken.add("2")
    with pytest.raises(StartFailed):
        promote(release, "2")
    assert seen(release) == before


def test_crash_after_the_commit_is_healed_by_reconcile(release, crash_at):
    crash_at("release.after_commit")
    with pytest.raises(Crash):
        promote(release, "2")
    s = seen(release)
    assert (s["champion"], s["published"]) == ("2", "1")  # committed, not rolled forward
    record = release.reconcile()
    assert isinstance(record, ReconcileRecord)
    assert record.champion == "2"
    assert record.retired_servers == ["1"]
    s = seen(release)
    assert (s["published"], s["answering"]) == ("2", ["2"])
    assert ("ETH/USDT", "2") in s["forecasts"]


def test_roll_forward_is_idempotent(release):
    promote(release, "2")
    once = seen(release)
    again = release.reconcile()
    assert again.retired_servers == []
    assert seen(release) == once  # same files, same rows (upserted), same server
    assert release.servers.started == 2  # the running v2 server was reused


def test_restart_starts_a_fresh_server_beside_the_old_one(release):
    old = release.servers.running("1")
    record = release.reconcile(restart=True)
    assert record.url != old.prediction_url
    assert record.retired_servers == ["1"]
    assert len(release.servers.live) == 1


def test_rollback_twice_is_an_undo_and_bad_requests_change_nothing(release):
    promote(release, "2")
    assert release.change_champion(None, event="rollback", reason="r").version == "1"
    s = seen(release)
    assert (s["champion"], s["previous"], s["published"], s["answering"]) == ("1", "2", "1", ["1"])
    release.change_champion(None, event="rollback", reason="r")
    assert (release.registry.champion(), release.registry.previous()) == ("2", "1")
    before = seen(release)
    with pytest.raises(ReleaseError, match="no version 9"):
        release.change_champion("9", event="manual_promote", reason="typo")
    same = release.change_champion("2", event="manual_promote", reason="already")
    assert isinstance(same, ReconcileRecord)
    assert seen(release) == before


def test_nothing_to_roll_back_to(release):
    with pytest.raises(ReleaseError, match="no previous version"):
        release.change_champion(None, event="rollback", reason="r")


def test_reconcile_without_a_champion(release):
    release.registry.aliases.clear()
    assert release.reconcile() == ReconcileRecord(champion=None)


@dataclass
class FakeFrontDoor:
    switches: bool = True
    followed: list[tuple[str, str]] = field(default_factory=list)
    prepared: int = 0

    def prepare(self):
        self.prepared += 1

    def follow(self, version, server_url):
        self.followed.append((version, server_url))
        return self.switches


def test_old_servers_stop_only_once_the_front_door_answers_from_the_new_one(release):
    release.front = FakeFrontDoor()
    promote(release, "2")
    assert release.front.prepared == 1  # launched before the new server started
    assert release.front.followed == [("2", release.servers.running("2").prediction_url)]
    assert seen(release)["answering"] == ["2"]
    release.front.switches = False  # the front door did not move in time
    record = release.change_champion(None, event="rollback", reason="r")
    assert record.retired_servers == []
    assert sorted(seen(release)["answering"]) == ["1", "2"]  # nobody is cut off


def test_a_failing_roll_forward_is_retried_then_says_how_to_finish(release, monkeypatch):
    monkeypatch.setattr(Release, "ROLL_FORWARD_BACKOFF_S", 0.0)
    real, failures = Release.store_bundle_forecasts, []

    def flaky(self, run_id=None, server=None):
        if len(failures) < 2:
            failures.append(1)
            raise OSError("database is locked")
        return real(self, run_id, server)

    monkeypatch.setattr(Release, "store_bundle_forecasts", flaky)
    assert promote(release, "2").forecast_rows == 12  # third attempt
    failures.clear()
    monkeypatch.setattr(Release, "ROLL_FORWARD_ATTEMPTS", 2)
    with pytest.raises(
        ReleaseIncomplete, match=r"v3 of release-test is the champion .* `make serve GRAN=hour`"
    ):
        promote(release, "3")
    assert release.registry.champion() == "3"  # live: committed before the failure
    monkeypatch.setattr(Release, "store_bundle_forecasts", real)
    assert release.reconcile().forecast_rows == 12  # make serve finishes it
