"""Which model server answers behind the front door, and why.

The registry says which version is champion (:class:`Identity`: model name, version, run
id, pairs). A model server is used only after it has proved that identity from its own
answers (every row of a smoke request for every pair names the same model, version and
run) — never because of the port it listens on. A background checker moves the front door
to the champion's newest server once it has proved itself (a promotion, a rollback, a
restart), and replaces a champion server that died (its requests wait meanwhile, bounded
by ``restart_wait_s``). Requests are forwarded with :meth:`Router.forward`.

The registry and the deployer are behind :class:`Champions` (bound in ``infra.frontdoor_server``);
the HTTP call is a :data:`Transport`, so all of this is testable without either.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Identity:
    """Who must answer: the champion as the registry knows it."""

    model_name: str
    version: str
    run_id: str
    pairs: tuple[str, ...]


@dataclass(frozen=True)
class Upstream:
    """A model server that proved it serves ``identity``."""

    url: str
    identity: Identity
    since: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


class UpstreamDown(Exception):
    """The model server did not answer at all (refused, reset, timed out)."""


class Refused(Exception):
    """The model server refused the request (HTTP 4xx): the caller's mistake."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class UpstreamFailed(Exception):
    """The model server answered with a server error (a bug to fix, not a dead server)."""


class Unavailable(Exception):
    """No verified champion server could answer in time."""


# POST JSON to a URL within a timeout: (HTTP status, decoded JSON body); raises
# UpstreamDown when nothing answered.
Transport = Callable[[str, dict[str, Any], float], tuple[int, Any]]


class Champions(Protocol):
    """The registry and the deployer as the router sees them: the champion, its servers, and
    starting or stopping them."""

    def champion(self) -> Identity | None:
        """The registry's champion, or None when there is none."""

    def servers(self, identity: Identity) -> list[str]:
        """URLs of the running servers of that version, newest first."""

    def replace(self, identity: Identity) -> str:
        """Start a fresh server of that version (the old one died); its URL."""

    def retire_others(self, identity: Identity, keep_url: str) -> None:
        """Stop that model's servers other than ``keep_url``."""


class Events(Protocol):
    """What the router reports (metrics)."""

    def switched(self, reason: str, upstream: Upstream) -> None:
        """The front door moved to ``upstream`` (``reason``: first, new version, new server,
        restart)."""

    def upstream_died(self, upstream: Upstream) -> None:
        """``upstream`` stopped answering."""

    def upstream_restarted(self, upstream: Upstream) -> None:
        """A fresh server replaced a dead one; it is ``upstream``."""


class _NoEvents:
    def switched(self, reason: str, upstream: Upstream) -> None:
        pass

    def upstream_died(self, upstream: Upstream) -> None:
        pass

    def upstream_restarted(self, upstream: Upstream) -> None:
        pass


def proves(rows: Any, identity: Identity) -> str | None:
    """None if ``rows`` (a server's answer to the smoke request) prove ``identity``;
    otherwise what is wrong."""
    if not isinstance(rows, list) or not rows:
        return "no predictions"
    seen = {(r.get("model_name"), str(r.get("model_version")), r.get("run_id")) for r in rows}
    want = (identity.model_name, identity.version, identity.run_id)
    if seen != {want}:
        return f"answered as {sorted(map(str, seen))}, expected {want}"
    answered = {r.get("pair") for r in rows}
    if answered != set(identity.pairs):
        return f"answered for {sorted(map(str, answered))}, expected {sorted(identity.pairs)}"
    return None


class Router:
    """Which model server answers behind the front door: checks the champion's servers in the
    background, forwards requests to the one that proved its identity, and replaces it when it
    dies."""

    REPLACE_BACKOFF_S = 10.0  # at most one replacement server started per this many seconds

    def __init__(
        self,
        champions: Champions,
        transport: Transport,
        *,
        timeout_s: float = 10.0,
        check_interval_s: float = 0.5,
        restart_wait_s: float = 60.0,
        events: Events | None = None,
    ) -> None:
        self.champions, self.transport = champions, transport
        self.timeout_s, self.check_interval_s = timeout_s, check_interval_s
        self.restart_wait_s = restart_wait_s
        self.events = events or _NoEvents()
        self._current: Upstream | None = None
        self._dead: set[str] = set()  # URLs that stopped answering
        self._changed = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_replace = 0.0
        self.last_error: str | None = None

    # -- what is served ----------------------------------------------------------------
    @property
    def current(self) -> Upstream | None:
        """The model server requests go to now, or None before one has proved itself."""
        return self._current

    def _switch(self, upstream: Upstream, reason: str) -> None:
        with self._changed:
            self._current = upstream
            self._dead.discard(upstream.url)
            self._changed.notify_all()
        self.events.switched(reason, upstream)
        log.info(
            "front door: now %s v%s at %s (%s)",
            upstream.identity.model_name,
            upstream.identity.version,
            upstream.url,
            reason,
        )

    def verify(self, url: str, identity: Identity) -> str | None:
        """None if the server at ``url`` proves ``identity``; otherwise why not."""
        records = [{"pair": p, "horizon": 1} for p in identity.pairs]
        try:
            status, body = self.transport(url, {"dataframe_records": records}, self.timeout_s)
        except UpstreamDown as exc:
            return f"no answer: {exc}"
        if status != 200:
            return f"HTTP {status}"
        return proves(body.get("predictions") if isinstance(body, dict) else None, identity)

    # -- the checker ---------------------------------------------------------------------
    def check(self) -> None:
        """One pass: follow the champion to its newest server that proves itself;
        replace the champion's server if none answers."""
        want = self.champions.champion()
        if want is None:
            self.last_error = "no champion yet"
            return
        current = self._current
        running = self.champions.servers(want)
        if current is not None and current.identity == want and current.url not in running:
            self._mark_dead(current)  # its process is gone, whether or not traffic noticed
        candidates = [u for u in running if u not in self._dead]
        up_to_date = (
            current is not None
            and current.identity == want
            and current.url not in self._dead
            and (not candidates or candidates[0] == current.url)
        )
        if up_to_date:
            self.last_error = None
            return
        for url in candidates:
            if current is not None and url == current.url and current.identity == want:
                continue
            problem = self.verify(url, want)
            if problem is None:
                reason = (
                    "first"
                    if current is None
                    else "new version"
                    if current.identity != want
                    else "new server"
                )
                self._switch(Upstream(url, want), reason)
                self.last_error = None
                return
            log.warning("front door: %s not used: %s", url, problem)
            self.last_error = f"{url}: {problem}"
        if current is not None and current.url not in self._dead:
            return  # nothing newer proved itself: keep the server that answers
        if time.monotonic() >= self._next_replace:
            self._next_replace = time.monotonic() + self.REPLACE_BACKOFF_S
            self._replace(want)

    def _replace(self, want: Identity) -> None:
        old = self._current
        log.warning(
            "front door: no server of %s v%s answers; starting one", want.model_name, want.version
        )
        url = self.champions.replace(want)
        problem = self.verify(url, want)
        if problem is not None:
            self.last_error = f"replacement {url}: {problem}"
            return
        upstream = Upstream(url, want)
        self._switch(upstream, "restart")
        self.events.upstream_restarted(upstream)
        if old is not None:
            self.champions.retire_others(want, keep_url=url)

    def _mark_dead(self, upstream: Upstream) -> None:
        if upstream.url not in self._dead:
            self._dead.add(upstream.url)
            self.events.upstream_died(upstream)
            log.warning("front door: %s stopped answering", upstream.url)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.check()
            except Exception as exc:  # the registry or deployer hiccupped: try again
                self.last_error = f"check failed: {exc}"
                log.warning("front door: %s", self.last_error)
            self._stop.wait(self.check_interval_s)

    def start(self) -> None:
        """Start the background check loop (a daemon thread)."""
        self._thread = threading.Thread(target=self._loop, name="front-door-check", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the check loop and wait for it (at most 5 s)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- requests ------------------------------------------------------------------------
    def _wait_for_live(self, deadline: float) -> Upstream:
        with self._changed:
            while True:
                up = self._current
                if up is not None and up.url not in self._dead:
                    return up
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Unavailable(self.last_error or "no champion server answers")
                self._changed.wait(min(left, 0.5))

    def forward(self, records: list[dict[str, Any]]) -> tuple[Upstream, list[dict[str, Any]]]:
        """Send ``records`` to the champion's server; return who answered and the rows.
        While the server is being replaced the request waits (up to ``restart_wait_s``)."""
        deadline = time.monotonic() + self.restart_wait_s
        while True:
            up = self._wait_for_live(deadline)
            try:
                status, body = self.transport(
                    up.url, {"dataframe_records": records}, self.timeout_s
                )
            except UpstreamDown:
                self._mark_dead(up)
                continue
            if status == 200:
                return up, body["predictions"]
            message = str(body.get("message", body) if isinstance(body, dict) else body)
            if 400 <= status < 500:  # MLflow wraps the model's words: keep only those
                raise Refused(status, message.rsplit("Error: ", 1)[-1].strip())
            raise UpstreamFailed(f"the model server failed: HTTP {status}: {message}")
