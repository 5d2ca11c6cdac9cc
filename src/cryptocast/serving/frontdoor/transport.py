"""HTTP to the model servers: a thread-safe connection pool, JSON in and out."""

from __future__ import annotations

import json
from typing import Any

import urllib3

from cryptocast.serving.frontdoor.router import UpstreamDown


class HttpTransport:
    """:data:`cryptocast.serving.frontdoor.router.Transport` over one urllib3 pool (keep-alive)."""

    def __init__(self, maxsize: int = 16) -> None:
        self._pool = urllib3.PoolManager(maxsize=maxsize, retries=False)

    def __call__(self, url: str, payload: dict[str, Any], timeout_s: float) -> tuple[int, Any]:
        try:
            resp = self._pool.request(
                "POST",
                url,
                body=json.dumps(payload).encode(),
                headers={"Content-Type": "application/json"},
                timeout=urllib3.Timeout(connect=min(2.0, timeout_s), read=timeout_s),
            )
        except urllib3.exceptions.HTTPError as exc:  # refused, reset, timed out
            raise UpstreamDown(str(exc)) from exc
        try:
            body = json.loads(resp.data or b"null")
        except ValueError:
            body = resp.data.decode("utf-8", "replace")[:500]
        return resp.status, body
