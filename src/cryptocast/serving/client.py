"""A small HTTP client for the served model (used by deploy's smoke test, the CLI and
the benchmark)."""

from __future__ import annotations

import time
from typing import Any

import requests

from cryptocast.errors import UserError


class ServingError(UserError, RuntimeError):
    """The server did not answer as expected."""


def forecast(url: str, records: list[dict[str, Any]], timeout_s: float = 30) -> list[dict]:
    """POST ``records`` (``{"pair": ..., "horizon": ...}``) and return the predictions."""
    resp = requests.post(url, json={"dataframe_records": records}, timeout=timeout_s)
    if resp.status_code != 200:
        raise ServingError(f"HTTP {resp.status_code} from {url}: {resp.text[:500]}")
    return resp.json()["predictions"]


def wait_until_serving(url: str, pairs: list[str], version: str, timeout_s: float = 60) -> None:
    """Poll until ``version`` answers for every pair; raise ServingError at the deadline."""
    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            rows = forecast(url, [{"pair": p, "horizon": 1} for p in pairs], timeout_s=5)
            answered = {r["pair"] for r in rows}
            versions = {r["model_version"] for r in rows}
            if answered == set(pairs) and versions == {str(version)}:
                return
            last = ServingError(
                f"{url} answered for {sorted(answered)} as version(s) {sorted(versions)}, "
                f"expected {pairs} as version {version}"
            )
        except (requests.RequestException, ServingError) as exc:
            last = exc
        time.sleep(0.25)
    raise ServingError(f"{url} did not serve version {version} within {timeout_s:.0f}s: {last}")
