"""The one HTTP client of the service: :class:`ForecastClient` for the stable front door
(used by ``cryptocast predict``, the app, the tests and the benchmark) and the model
server calls of a release (:func:`forecast`, :func:`wait_until_serving`)::

    from cryptocast.serving.client import ForecastClient
    fc = ForecastClient("http://127.0.0.1:8080")
    answer = fc.forecast([{"pair": "BTC/USDT", "horizon": 3}, {"pair": "ETH/USDT"}])
    answer.model_version, answer.forecasts[0].target_time, answer.forecasts[0].upper
"""

from __future__ import annotations

import time
from typing import Any

import requests

from cryptocast.errors import UserError
from cryptocast.serving.frontdoor.contract import ForecastResponse, ModelCard, VersionInfo


class ClientError(UserError, RuntimeError):
    """The front door refused the request or could not be reached."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ForecastClient:
    """A client of the front door at ``base_url``: forecasts, the served version and model card,
    readiness. Refusals and unreachable servers are :class:`ClientError`."""

    def __init__(self, base_url: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_s = timeout_s
        self._session = requests.Session()

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        url = f"{self.base_url}{path}"
        try:
            resp = self._session.request(method, url, timeout=self.timeout_s, **kw)
        except requests.RequestException as exc:
            raise ClientError(f"no answer from {url}: {exc}") from exc
        if resp.status_code != 200:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise ClientError(f"HTTP {resp.status_code} from {url}: {detail}", resp.status_code)
        return resp.json()

    def forecast(self, records: list[dict[str, Any]]) -> ForecastResponse:
        """Forecasts for ``records`` (``pair``, optional ``horizon`` and ``candles``)."""
        return ForecastResponse.model_validate(
            self._call("POST", "/forecast", json={"records": records})
        )

    def version(self) -> VersionInfo:
        """What the front door serves now (:class:`VersionInfo`)."""
        return VersionInfo.model_validate(self._call("GET", "/version"))

    def model(self) -> ModelCard:
        """The champion's backtest, live accuracy, recent closes and promotions."""
        return ModelCard.model_validate(self._call("GET", "/model"))

    def ready(self) -> bool:
        """Whether the front door answers ``/ready`` with 200 (a champion is served)."""
        try:
            self._call("GET", "/ready")
        except ClientError:
            return False
        return True

    def wait_ready(self, timeout_s: float = 60.0) -> VersionInfo:
        """Wait until :meth:`ready`, at most ``timeout_s`` (else :class:`ClientError`); the version
        it then serves."""
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if time.monotonic() > deadline:
                raise ClientError(f"{self.base_url} was not ready within {timeout_s:.0f}s")
            time.sleep(0.2)
        return self.version()


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
