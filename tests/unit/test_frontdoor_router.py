"""The front door's router without ZenML or MLflow, over fake model servers: identity
checks, switching, replacing a dead server, waiting requests, and how often the registry's
servers are listed."""

from __future__ import annotations

import threading
import time

import pytest

from cryptocast.serving.frontdoor.router import Identity, proves
from tests.unit.frontdoor_fakes import (
    PAIRS,
    V1,
    V2,
    FakeModelServer,
    FakeWorld,
    new_world,
    router_for,
)


@pytest.fixture
def world() -> FakeWorld:
    return new_world()


def test_proves_checks_name_version_run_and_pairs():
    good = FakeModelServer(V1).answer(
        {"dataframe_records": [{"pair": p, "horizon": 1} for p in PAIRS]}
    )
    assert proves(good[1]["predictions"], V1) is None
    assert "expected ('m', '2', 'run-2')" in proves(good[1]["predictions"], V2)
    one = [r for r in good[1]["predictions"] if r["pair"] == "BTC/USDT"]
    assert "answered for ['BTC/USDT']" in proves(one, V1)
    assert proves([], V1) == "no predictions"


def test_first_check_switches_to_the_server_that_proves_itself(world):
    r = router_for(world)
    assert r.current.url == "http://a"
    assert r.current.identity == V1


def test_a_server_with_another_identity_is_never_used(world):
    """The port race: the deployer's record points at a port where another model
    answers. That server is never used: the working one stays, or a proper one starts."""
    r = router_for(world)  # serving v1 from http://a
    world.add("http://b", V1)  # v2's record says http://b, but v1 answers there
    world.servers = lambda identity: ["http://b"]
    world.champ = V2
    r.check()
    assert r.current.url == "http://a"  # the working server stays; http://b is not used
    assert "expected ('m', '2', 'run-2')" in r.last_error
    fresh = router_for(world)  # nothing serves yet: a v2 server is started, never http://b
    assert (fresh.current.url, fresh.current.identity) == ("http://replacement-1", V2)


def test_promotion_switches_only_after_the_commit(world):
    r = router_for(world)
    world.add("http://b", V2)  # blue server up, registry still says v1
    r.check()
    assert r.current.identity == V1
    world.champ = V2  # the commit
    r.check()
    assert (r.current.url, r.current.identity) == ("http://b", V2)


def test_restart_of_the_same_version_moves_to_the_newest_server(world):
    r = router_for(world)
    world.add("http://a2", V1)
    r.check()
    assert r.current.url == "http://a2"


def test_a_dead_server_is_replaced_and_waiting_requests_succeed(world):
    events = []

    class Events:
        def switched(self, reason, up):
            events.append(("switched", reason))

        def upstream_died(self, up):
            events.append(("died", up.url))

        def upstream_restarted(self, up):
            events.append(("restarted", up.url))

    r = router_for(world, events=Events())
    world.servers_by_url["http://a"].alive = False
    r.start()
    try:
        up, rows = r.forward([{"pair": "BTC/USDT", "horizon": 2}])
    finally:
        r.stop()
    assert up.url == "http://replacement-1"
    assert len(rows) == 2
    assert ("died", "http://a") in events
    assert ("restarted", "http://replacement-1") in events
    assert list(world.servers_by_url) == ["http://replacement-1"]  # the dead one retired


def test_requests_are_refused_with_the_models_words(world):
    from cryptocast.serving.frontdoor.router import Refused

    r = router_for(world)
    with pytest.raises(Refused, match=r"^unknown pair 'DOGE/USDT'$"):
        r.forward([{"pair": "DOGE/USDT", "horizon": 1}])


def test_no_champion_means_not_ready(world):
    from cryptocast.serving.frontdoor.router import Unavailable

    world.champ = None
    r = router_for(world)
    r.restart_wait_s = 0.2
    with pytest.raises(Unavailable, match="no champion yet"):
        r.forward([{"pair": "BTC/USDT", "horizon": 1}])


def test_requests_wait_through_a_switch(world):
    """Many requests while the champion changes: all answered, versions never go back."""
    r = router_for(world)
    r.start()
    seen, errors = [], []

    def hammer():
        for _ in range(200):
            try:
                up, _ = r.forward([{"pair": "BTC/USDT", "horizon": 1}])
                seen.append(up.identity.version)
            except Exception as exc:
                errors.append(exc)

    t = threading.Thread(target=hammer)
    t.start()
    time.sleep(0.01)
    world.add("http://b", V2)
    world.champ = V2
    t.join()
    r.stop()
    assert errors == []
    assert seen == sorted(seen)  # 1...1 2...2


def test_servers_are_listed_again_only_when_something_changed(monkeypatch, hour_cfg):
    """The check loop asks every half second; the full listing (every record hydrated,
    every server pinged) runs only when the records, the champion or ten seconds say so."""
    from infra import deployer, frontdoor_server

    class Server:
        def __init__(self, url, version):
            self.prediction_url, self.is_running = url, True
            self.config = type("Config", (), {"registry_model_version": version})

    mark, listings, clock = [(1, "t1")], [], [100.0]
    live = [Server("http://a/invocations", "1")]
    monkeypatch.setattr(deployer, "records_mark", lambda: mark[0])
    monkeypatch.setattr(deployer, "servers", lambda name: listings.append(name) or live)
    monkeypatch.setattr(frontdoor_server.time, "monotonic", lambda: clock[0])
    champions = frontdoor_server.RegistryChampions(hour_cfg)
    v1 = Identity(model_name="m", version="1", run_id="r", pairs=("BTC/USDT",))
    v2 = Identity(model_name="m", version="2", run_id="r", pairs=("BTC/USDT",))
    assert champions.servers(v1) == ["http://a/invocations"]
    assert champions.servers(v1) == ["http://a/invocations"]
    assert len(listings) == 1  # nothing changed: not listed again
    live.insert(0, Server("http://b/invocations", "1"))
    mark[0] = (2, "t2")  # a server was started
    assert champions.servers(v1) == ["http://b/invocations", "http://a/invocations"]
    assert len(listings) == 2
    assert champions.servers(v2) == []  # another champion: listed at once
    assert len(listings) == 3
    clock[0] += frontdoor_server.RegistryChampions.LIST_EVERY_S
    champions.servers(v2)
    assert len(listings) == 4  # and at least every LIST_EVERY_S
