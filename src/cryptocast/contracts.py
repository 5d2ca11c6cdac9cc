"""The contracts, defined once: OHLCV frame, forecast frame, the records a run writes
(source info, decision, manifest, release, monitor decision), registry tag keys, HTTP I/O.

Steps, the adapters, the serving wrapper and the tests all import from here.
"""

from __future__ import annotations

from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, RootModel

from cryptocast.errors import UserError

PRICE_COLUMNS = ("open", "high", "low", "close")
OHLCV_COLUMNS = ("pair", "timestamp", *PRICE_COLUMNS, "volume")
# origin: open time of the last candle the forecast is made from; target_time: the open
# time of the candle it forecasts. Column -> type; the served model's MLflow signature is
# derived from it (cryptocast.delivery.registry.SIGNATURE).
FORECAST_SCHEMA: dict[str, type] = {
    "pair": str,
    "origin": pd.Timestamp,
    "target_time": pd.Timestamp,
    "step": int,
    "forecast": float,
    "lower": float,
    "upper": float,
    # {"0.05": price, ...}: the calibrated quantiles, as JSON text ("{}" from models
    # trained before quantiles existed; lower/upper are then a Gaussian band)
    "quantiles": str,
    "model_version": str,
}
FORECAST_COLUMNS = tuple(FORECAST_SCHEMA)
TIME_COLUMNS = tuple(c for c, t in FORECAST_SCHEMA.items() if t is pd.Timestamp)
# A model server's answer adds who answered: the registered model and the MLflow run that
# logged it, so that the front door can check a server's identity from what it says.
SERVED_SCHEMA: dict[str, type] = FORECAST_SCHEMA | {
    "model_name": str,
    "run_id": str,
    "model": str,
}

# Registry tags of a model version: ``model.<pair>`` names the candidate served for a pair.
MODEL_TAG_PREFIX = "model."


def model_tag(pair: str) -> str:
    """The registry tag key naming the candidate served for ``pair``."""
    return f"{MODEL_TAG_PREFIX}{pair}"


def pairs_from_tags(tags: dict[str, str]) -> list[str]:
    """The pairs a version serves, from its ``model.<pair>`` tags."""
    return sorted(k.removeprefix(MODEL_TAG_PREFIX) for k in tags if k.startswith(MODEL_TAG_PREFIX))


class ContractError(ValueError):
    """A frame does not follow its contract (missing columns, wrong types)."""


def to_ohlcv(frame: pd.DataFrame) -> pd.DataFrame:
    """Return ``frame`` in the OHLCV contract: long format, one row per (pair, timestamp).

    ``timestamp`` is the candle's open time as timezone-aware UTC; prices and volume are
    float64; rows are sorted by pair then time. Duplicates and gaps are *not* touched here
    (that is validation's job, which reports them).
    """
    missing = [c for c in OHLCV_COLUMNS if c not in frame.columns]
    if missing:
        raise ContractError(f"OHLCV frame is missing columns {missing}; has {list(frame.columns)}")
    out = frame.loc[:, list(OHLCV_COLUMNS)].copy()
    ts = out["timestamp"]
    if not isinstance(ts.dtype, pd.DatetimeTZDtype):
        if pd.api.types.is_datetime64_any_dtype(ts):
            raise ContractError("OHLCV timestamps must be timezone-aware (UTC), got naive")
        ts = pd.to_datetime(ts, utc=True)
    out["timestamp"] = ts.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    out["pair"] = out["pair"].astype(str)
    for col in (*PRICE_COLUMNS, "volume"):
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    return out.sort_values(["pair", "timestamp"], kind="stable").reset_index(drop=True)


def pair_slug(pair: str) -> str:
    """File-system and URL friendly name: ``BTC/USDT`` -> ``BTC-USDT``."""
    return pair.replace("/", "-")


def forecast_frame(rows: list[dict]) -> pd.DataFrame:
    """Build a frame in the forecast contract (used by serving, plots and storage)."""
    frame = pd.DataFrame(rows, columns=list(FORECAST_COLUMNS))
    for col in TIME_COLUMNS:
        frame[col] = pd.to_datetime(frame[col], utc=True)
    return frame


class _Record(BaseModel):
    """A record a run writes (JSON in MLflow, the ZenML dashboard, files)."""

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


class PairSpan(_Record):
    """One pair's candles in a run's data: the first and last open time and the row count."""

    first: str
    last: str
    rows: int


class SourceInfo(_Record):
    """Where a run's candles came from (the load step's ``source`` output)."""

    requested: str = Field(description="The source the config asked for (auto, binance, ...).")
    used: str = Field(description="The source that gave the candles: binance | files | sample.")
    fallback: bool = Field(default=False, description="auto fell back to sample data.")
    live: bool = Field(default=False, description="Live data: subject to the freshness rule.")
    details: dict[str, Any] = Field(default_factory=dict)
    pairs: dict[str, PairSpan] = Field(default_factory=dict)


class DMTest(BaseModel):
    """A Diebold-Mariano comparison (cryptocast.modeling.significance): the challenger's loss minus
    the other model's, per origin; negative ``mean_diff``/``stat`` favour the challenger."""

    n: int
    lags: int
    mean_diff: float
    stat: float
    p_value: float  # one-sided: the challenger is better
    variance: str


class PairDecision(BaseModel):
    """What evaluate decided for one pair: its challenger, the gate, the champion comparison and the
    reasons."""

    pair: str
    challenger: str  # the candidate that would be served: the best learned one, or naive
    passed_gate: bool  # the best learned candidate beat the naive within the gate
    mase: float  # the challenger's MASE
    naive_mase: float
    mase_ratio: float  # best learned candidate's MASE / naive MASE
    coverage: float | None = None  # the challenger's interval coverage in the backtest
    champion_mase: float | None = None
    suspicious: bool = False  # MASE ratio below the leakage floor
    naive_test: DMTest | None = None  # best learned candidate vs naive
    champion_test: DMTest | None = None  # challenger vs the champion
    reasons: list[str] = Field(default_factory=list)


class Decision(BaseModel):
    """What evaluate decided and why; deploy acts on this and nothing else."""

    action: Literal["promote", "keep", "reject"]
    granularity: str
    reasons: list[str]
    pairs: list[PairDecision]
    champion_version: str | None = None
    challenger_mean_mase: float
    champion_mean_mase: float | None = None
    any_pair_passed: bool
    gates: dict[str, Any] = Field(default_factory=dict)
    learned_candidates: int = 0  # the challengers were chosen among this many
    pooled_naive_test: DMTest | None = None
    pooled_champion_test: DMTest | None = None
    p_value_adjusted: float | None = None  # pooled vs champion, Bonferroni-adjusted
    guard: str | None = None  # the data provenance rule that applied, if any

    def summary(self) -> str:
        """The decision in words, one line per pair with its reasons, for logs and the CLI."""
        lines = [f"decision: {self.action.upper()} ({self.granularity})"]
        lines += [f"  - {r}" for r in self.reasons]
        for p in self.pairs:
            cells = [
                f"  {p.pair}: challenger {p.challenger}",
                f"MASE {p.mase:.4f} (naive {p.naive_mase:.4f})",
                f"best learned / naive {p.mase_ratio:.3f}",
            ]
            if p.naive_test is not None:
                cells.append(f"DM vs naive p={p.naive_test.p_value:.3g}")
            if p.coverage is not None:
                cells.append(f"coverage {p.coverage:.3f}")
            if p.champion_mase is not None:
                cells.append(f"champion MASE {p.champion_mase:.4f}")
            lines.append(" | ".join(cells))
            lines += [f"      {r}" for r in p.reasons]
        return "\n".join(lines)


# The random walk (the ``naive`` forecaster with its calibrated intervals) is what every
# learned model must beat; a version that serves it for every pair is the baseline.
BASELINE_KIND = "naive"
BASELINE_LABEL = "baseline: random walk"
LABEL_TAG = "model_label"


def served_model(candidate: str, kind: str) -> str:
    """What made a pair's forecasts, in words: the candidate, or the baseline."""
    return BASELINE_LABEL if kind == BASELINE_KIND else candidate


def version_label(models: dict[str, str]) -> str:
    """A version in words from its pairs' :func:`served_model`: ``baseline: random walk``
    when every pair is served by it, else ``BTC/USDT lightgbm, ETH/USDT random walk``."""
    if models and all(m == BASELINE_LABEL for m in models.values()):
        return BASELINE_LABEL
    named = {p: "random walk" if m == BASELINE_LABEL else m for p, m in models.items()}
    return ", ".join(f"{p} {m}" for p, m in sorted(named.items()))


DataKind = Literal["exchange", "files", "sample", "scenario"]
REAL_DATA: tuple[str, ...] = ("exchange", "files")


class Provenance(_Record):
    """What a model was trained on: the kind of data, whether it was a fallback, the
    backfill date (``UNTIL``) and the data window. Recorded as registry tags."""

    kind: DataKind
    fallback: bool = False
    until: str | None = None
    first: str | None = None
    last: str | None = None

    @property
    def real(self) -> bool:
        """Market data, as asked for (not synthetic, not a what-if, not a fallback)."""
        return self.kind in REAL_DATA and not self.fallback

    def describe(self) -> str:
        """The kind of data in words (``files data``, ``sample data (a fallback)``)."""
        fallback = " (a fallback)" if self.fallback else ""
        return f"{self.kind} data{fallback}"

    @classmethod
    def of_source(cls, source: SourceInfo, until: str | None) -> Provenance:
        """The provenance of a run from its load step's :class:`SourceInfo` and its backfill date
        ``until``: the kind of data, fallback or not, and the window its pairs span."""
        spans = source.pairs.values()
        kind = "scenario" if source.details.get("scenario") else SOURCE_KINDS[source.used]
        return cls(
            kind=kind,
            fallback=source.fallback,
            until=until,
            first=min((s.first for s in spans), default=None),
            last=max((s.last for s in spans), default=None),
        )

    def tags(self) -> dict[str, str]:
        """Registry tags of a version (read back by :meth:`from_tags`)."""
        return {
            PROVENANCE_TAG + "kind": self.kind,
            PROVENANCE_TAG + "fallback": str(self.fallback).lower(),
            PROVENANCE_TAG + "until": self.until or "",
            PROVENANCE_TAG + "first": self.first or "",
            PROVENANCE_TAG + "last": self.last or "",
        }

    @classmethod
    def from_tags(cls, tags: dict[str, str]) -> Provenance:
        """A version's provenance; versions from before these tags have ``data_source``."""
        if PROVENANCE_TAG + "kind" not in tags:
            return cls(kind=SOURCE_KINDS.get(tags.get("data_source", ""), "sample"))
        get = {k.removeprefix(PROVENANCE_TAG): v for k, v in tags.items()}
        return cls(
            kind=get["kind"],
            fallback=get.get("fallback") == "true",
            until=get.get("until") or None,
            first=get.get("first") or None,
            last=get.get("last") or None,
        )


# the load step's ``used`` source -> the kind of data it gives
SOURCE_KINDS: dict[str, DataKind] = {"binance": "exchange", "files": "files", "sample": "sample"}
PROVENANCE_TAG = "data."


class PairEntry(BaseModel):
    """One pair of a bundle: its file, the candidate served and its backtest metrics."""

    model_config = ConfigDict(extra="allow")
    file: str = ""
    candidate: str = ""
    kind: str = ""
    metrics: dict[str, float] = Field(default_factory=dict)
    naive_mase: float | None = None
    calibration: dict[str, list[float]] = Field(
        default_factory=dict,
        description="Quantile level -> normalised score quantile per step "
        "(cryptocast.modeling.uncertainty); empty in bundles from before calibration.",
    )


class Manifest(BaseModel):
    """``manifest.json`` of a bundle: how to forecast, and where the model came from.

    Extra keys are kept (older bundles, and provenance that may grow)."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)
    format: int = 1
    granularity: str
    freq: str
    horizon: int
    interval: float
    interval_lookback: int
    volatility_halflife: float | None = None  # None: a bundle from before calibration
    validation: dict[str, Any] = Field(default_factory=dict)
    model_name: str = "unregistered"
    model_version: str = ""
    label: str | None = None  # version_label(); None in bundles from before labels
    limits: dict[str, int] = Field(
        default_factory=dict,
        description="The front door's max_records and max_candles, which the model server "
        "applies too (empty in bundles from before).",
    )
    created_at: str | None = None
    mlflow_run_id: str | None = None
    zenml_run_id: str | None = None
    data_source: str | None = None
    data_fingerprint: str | None = None
    git_commit: str | None = None
    lockfile_sha256: str | None = None
    code_fingerprint: str | None = None
    provenance: Provenance | None = None
    pairs: dict[str, PairEntry] = Field(default_factory=dict)


class ReleaseRecord(_Record):
    """What a release did: the version made champion, the one it replaced, where it is
    served, how long it took and what the roll-forward changed."""

    event: str
    version: str
    previous: str | None = None
    url: str | None = None
    seconds_to_answer: float = 0.0
    seconds_total: float = 0.0
    forecast_rows: int = 0
    retired_servers: list[str] = Field(default_factory=list)

    def lines(self, model_name: str) -> list[str]:
        """What a person reads after a promotion or rollback."""
        before = f"v{self.previous}" if self.previous else "none"
        return [
            f"{self.event}: {model_name} v{self.version} is champion (previous: {before})",
            f"  answering at {self.url or '- (serving is off)'}, "
            f"{self.seconds_to_answer:.1f}s after the start ({self.seconds_total:.1f}s in all)",
            f"  forecasts stored: {self.forecast_rows} rows; older servers stopped: "
            f"{', '.join(f'v{v}' for v in self.retired_servers) or 'none'}",
        ]


class Deployment(_Record):
    """What the deploy step did (its ``deployment`` output): the decision acted on, the
    champion afterwards and where it answers, and the release's record when it promoted."""

    action: str
    version: str | None = None
    url: str | None = None
    release: ReleaseRecord | None = None


class Calibrations(RootModel[dict[str, dict[str, list[float]]]]):
    """Per pair, the calibration of the candidate it would serve: quantile level -> the
    normalised score quantile per step (the evaluate step's ``calibration`` output)."""


class ChampionWindow(_Record):
    """The champion a monitoring run judges: its version, each pair's forecast origin and
    how many candles came after it (the split step's ``champion`` output)."""

    version: str
    origins: dict[str, str]
    recent_candles: dict[str, int]


class TrainingTrigger(_Record):
    """Whether monitoring started a training run, and how it ended (the trigger step's
    output)."""

    triggered: bool
    returncode: int | None = None
    rejected: bool = False
    command: list[str] = Field(default_factory=list)


class ReconcileRecord(_Record):
    """What ``make serve`` (reconcile) found and did."""

    champion: str | None
    url: str | None = None
    forecast_rows: int = 0
    retired_servers: list[str] = Field(default_factory=list)

    def lines(self, model_name: str) -> list[str]:
        """What a person reads after ``make serve``."""
        return [
            f"serve: {model_name} v{self.champion} answering at {self.url or '-'}",
            f"  forecasts stored: {self.forecast_rows} rows; older servers stopped: "
            f"{', '.join(f'v{v}' for v in self.retired_servers) or 'none'}",
        ]


class MonitorDecision(_Record):
    """What the monitoring pipeline decided and why."""

    action: Literal["retrain", "ok"]
    reasons: list[str]
    drift_share: float
    live_mase: dict[str, float]


class RequestError(UserError, ValueError):
    """A forecast request the model cannot answer (HTTP 400, with this message)."""


# The served model's input: one row per request (``dataframe_records``). ``candles`` is
# optional: a JSON array of OHLCV records (timestamp, open, high, low, close, volume) that
# continue the model's history; the forecast is then made from the last of them.
def request_example(manifest: Manifest) -> pd.DataFrame:
    """A request the model of ``manifest`` answers: its first pair, up to 3 steps (MLflow
    logs it and checks that the model serves it)."""
    return pd.DataFrame([{"pair": min(manifest.pairs), "horizon": min(3, manifest.horizon)}])
