"""Run configuration: one schema for both granularities.

``configs/<gran>.yaml`` is a ZenML run configuration; the pipeline parameter ``config``
inside it validates against :class:`Settings`. Hour and day differ only in these values.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal, TypeVar

import pandas as pd
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from cryptocast.paths import resolve

Source = Literal["auto", "binance", "files", "sample"]
S = TypeVar("S", bound="RunIdentity")


def central_levels(width: float) -> tuple[float, float]:
    """The quantile levels bounding the central interval of ``width`` (0.8 -> 0.1, 0.9)."""
    return round((1 - width) / 2, 10), round((1 + width) / 2, 10)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SampleSettings(_Strict):
    """Deterministic synthetic candles (the offline default)."""

    seed: int = 7
    end: datetime = Field(
        default=datetime.fromisoformat("2026-11-01T00:00:00+00:00"),
        description="Open time of the last synthetic candle (fixed, so runs are reproducible).",
    )


class DataSettings(_Strict):
    """Where the candles come from (``data:``) and how much history a run loads."""

    source: Source = "auto"
    history: int = Field(gt=0, description="Candles of history to load per pair.")
    data_dir: Path | None = Field(default=None, description="Directory for source=files.")
    files: dict[str, str] = Field(
        default_factory=dict,
        description="Explicit file name -> pair mapping for source=files; otherwise the "
        "pair is read from each file's `symbol`/`pair` column, else from its name "
        "(Binance_BTCUSDT_1h.csv, BTC-USD.csv), else PAIRS when one file and one pair.",
    )
    quote_currencies: list[str] = Field(
        default_factory=lambda: ["USDT", "USDC", "BUSD", "USD", "EUR"],
        description="Quote currencies that split a symbol written without a separator "
        "(BTCUSDT -> BTC/USDT; the longest match wins).",
    )
    cache_dir: Path = Field(
        default=Path("data/cache"),
        validate_default=True,
        description="Exchange candles cached between runs (relative: to the repository root).",
    )
    exchange: str = "binance"
    strict: bool = Field(
        default=False, description="When true, source=auto never falls back to sample data."
    )
    retries: int = Field(default=4, ge=0)
    backoff_s: float = Field(default=1.0, ge=0)
    page_limit: int = Field(default=1000, gt=0)
    sample: SampleSettings = SampleSettings()
    end: datetime | None = Field(
        default=None,
        description="Drop candles that open after this time (train 'as of' a date; "
        "`make train UNTIL=...`).",
    )

    @field_validator("data_dir", "cache_dir")
    @classmethod
    def _absolute(cls, value: Path | None) -> Path | None:
        return None if value is None else resolve(value)


class ValidationSettings(_Strict):
    """The OHLCV contract's thresholds (``validation:``): what is repaired, what stops a
    run (see :mod:`cryptocast.data.validation`)."""

    duplicate_rel_tolerance: float = Field(
        default=1e-4,
        ge=0,
        description="Duplicate timestamps whose prices differ by at most this relative "
        "amount are merged (mean); larger differences are violations.",
    )
    max_fill_gap: int = Field(
        default=3, ge=0, description="Gaps of up to this many candles are filled (flat)."
    )
    max_abs_log_return: float = Field(
        default=0.5, gt=0, description="|log(close_t/close_t-1)| above this is a bad print."
    )
    min_history: int = Field(gt=0, description="Candles required per pair after repair.")
    max_staleness: str | None = Field(
        default=None,
        description="Pandas offset (e.g. '6h'). Applied to live sources only (binance); "
        "historical files and sample data are never rejected as stale.",
    )

    @field_validator("max_staleness")
    @classmethod
    def _offset(cls, value: str | None) -> str | None:
        if value is not None:
            pd.Timedelta(value)
        return value


class CandidateSpec(_Strict):
    """One entry of the candidate registry (see cryptocast.modeling.candidates.CANDIDATES)."""

    kind: str
    params: dict[str, Any] = Field(default_factory=dict)


class EvaluationSettings(_Strict):
    """The rolling-origin backtest and the calibrated quantiles (``evaluation:``)."""

    window: int = Field(gt=0, description="Most recent candles held out for the backtest.")
    stride: int = Field(gt=0, description="Candles between two forecast origins.")
    baseline: str = Field(default="naive", description="Candidate that defines 'naive'.")
    interval: float = Field(
        default=0.8, gt=0, lt=1, description="Central interval (lower..upper) width."
    )
    interval_lookback: int = Field(
        default=168,
        gt=1,
        description="Log returns before the origin behind the uncalibrated Gaussian band "
        "(the reference of the calibrated quantiles, and what older models serve).",
    )
    volatility_halflife: float = Field(
        default=24,
        gt=0,
        description="Half-life in candles of the EWMA volatility that scales the quantiles.",
    )
    calibration_window: int = Field(
        gt=0,
        description="Candles of forecast errors that calibrate the quantiles of the next "
        "forecast (models are fitted before this window and the evaluation window).",
    )
    quantiles: list[float] = Field(
        default=[0.05, 0.1, 0.5, 0.9, 0.95],
        min_length=1,
        description="Quantile levels every forecast carries; must include the interval's.",
    )

    @model_validator(mode="after")
    def _levels(self) -> EvaluationSettings:
        if any(not 0 < q < 1 for q in self.quantiles) or self.quantiles != sorted(
            set(self.quantiles)
        ):
            raise ValueError(f"quantiles must be increasing levels in (0, 1): {self.quantiles}")
        missing = [q for q in central_levels(self.interval) if q not in self.quantiles]
        if missing:
            raise ValueError(
                f"quantiles {self.quantiles} lack {missing}, the bounds of the "
                f"{self.interval:.0%} interval"
            )
        if self.calibration_window % self.stride:
            raise ValueError(
                f"calibration_window {self.calibration_window} must be a multiple of stride "
                f"{self.stride} (the evaluation origins continue the backtest's)"
            )
        return self


class Gates(_Strict):
    """When a challenger may replace the champion (see cryptocast.modeling.evaluation)."""

    max_mase_ratio: float = Field(
        default=1.0,
        gt=0,
        description="A pair passes when challenger MASE <= this x naive MASE "
        "(1.0 = at least as good as the random walk).",
    )
    min_improvement: float = Field(
        default=0.01,
        ge=0,
        description="Relative MASE improvement over the champion (same window) required "
        "to promote, on top of significance.",
    )
    significance: float = Field(
        default=0.10,
        gt=0,
        lt=1,
        description="One-sided p-value (pooled Diebold-Mariano, Bonferroni over the "
        "learned candidates) below which the challenger's gain over the champion counts.",
    )
    leakage_floor: float = Field(
        default=0.95,
        gt=0,
        description="A MASE ratio vs naive below this is more likely a leak than skill: "
        "flagged, never promoted automatically.",
    )
    promote_backfill: bool = Field(
        default=False,
        description="A person's decision for one run (make train UNTIL=... "
        "PROMOTE_BACKFILL=1): let a backfill run move the champion.",
    )
    require_learned: bool = Field(
        default=False,
        description="Quality gate for a CI that wants a learned model or a failure: a run "
        "in which no learned model beats the random walk is REJECTed (exit 3) instead of "
        "serving the calibrated random walk (make train REQUIRE_LEARNED=1).",
    )


class MonitoringSettings(_Strict):
    """`make monitor`: live accuracy of the champion and drift since its training."""

    reference_window: int = Field(gt=10, description="Candles before the champion's origin.")
    max_live_mase: float = Field(gt=0, description="Retrain when a pair's live MASE is above.")
    min_scored: int = Field(default=24, gt=0, description="Forecasts needed to judge accuracy.")
    live_window: int = Field(gt=0, description="Score the last N forecasts that came due.")
    min_recent: int = Field(default=24, gt=1, description="Recent candles needed to judge drift.")
    psi: float = Field(
        default=0.2,
        gt=0,
        description="A feature drifted when its PSI is above (0.2: the "
        "usual 'significant shift' level).",
    )
    ks_pvalue: float = Field(
        default=0.01, gt=0, lt=1, description="... or when its KS p-value is below."
    )
    drift_share: float = Field(
        default=0.5, gt=0, le=1, description="Retrain when this share of (pair, feature) drifted."
    )
    retrain: bool = Field(default=True, description="Run the training pipeline when needed.")
    schedule: str = Field(description="Cron schedule of `make monitor` (`make schedule`).")
    retrain_schedule: str = Field(description="Cron schedule of a regular `make train`.")
    training_period_hours: float = Field(
        gt=0, description="Expected time between trainings; alert when twice as old."
    )

    def drift_limits(self) -> dict[str, Any]:
        """Keyword arguments of :func:`cryptocast.observability.monitoring.drift`."""
        return {"psi_limit": self.psi, "ks_pvalue": self.ks_pvalue, "min_recent": self.min_recent}

    def decision_limits(self) -> dict[str, Any]:
        """Keyword arguments of :func:`cryptocast.observability.monitoring.retrain_decision`."""
        return {
            "max_live_mase": self.max_live_mase,
            "min_scored": self.min_scored,
            "drift_share": self.drift_share,
        }


class DeploySettings(_Strict):
    """Where a promoted model goes (``deploy:``): its registered name, the published
    bundle, whether it is served."""

    model_name: str = Field(description="Registered MLflow model name.")
    models_dir: Path = Field(
        description="Where the served bundle is published (relative: to the repository root)."
    )
    serve: bool = True
    timeout_s: int = Field(default=60, gt=0)

    @field_validator("models_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return resolve(value)


class ServiceSettings(_Strict):
    """The stable front door of a granularity (`make front`): one address that always
    answers with the champion, whatever model server is behind it."""

    host: str = Field(default="127.0.0.1", description="Address the front door listens on.")
    port: int = Field(gt=0, lt=65536, description="Its port (fixed: clients keep it).")
    max_body_bytes: int = Field(default=1_048_576, gt=0, description="Larger bodies: 413.")
    max_records: int = Field(default=64, gt=0, description="Forecast records per request.")
    max_candles: int = Field(default=500, gt=0, description="Candles per record.")
    max_depth: int = Field(default=8, gt=2, description="JSON nesting allowed in a body.")
    upstream_timeout_s: float = Field(default=10.0, gt=0, description="Per model call.")
    check_interval_s: float = Field(
        default=0.5, gt=0, description="How often the champion and its server are checked."
    )
    switch_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long a release waits for the front door to move to the new server "
        "before it leaves the old one running.",
    )
    restart_wait_s: float = Field(
        default=60.0,
        gt=0,
        description="How long a request may wait while a dead model server is replaced.",
    )


class ScaleSettings(_Strict):
    """How per-pair work fans out: one ZenML ``fit`` step per shard of pairs (an
    orchestrator that runs steps in parallel, e.g. Kubernetes, spreads them over
    machines), and how many threads each step's numeric libraries may use."""

    pairs_per_step: int = Field(
        default=8, gt=0, description="Pairs fitted and backtested by one fit step (a shard)."
    )
    workers: int = Field(
        default=1,
        gt=0,
        description="Fit steps running at once on one machine (the local orchestrator: 1).",
    )
    threads: int = Field(
        default=0,
        ge=0,
        description="Threads per step for torch, LightGBM and OpenMP; 0: the CPUs the step "
        "may use / workers.",
    )

    def shards(self, pairs: list[str]) -> list[list[str]]:
        """``pairs`` in config order, cut into groups of ``pairs_per_step``."""
        n = self.pairs_per_step
        return [pairs[i : i + n] for i in range(0, len(pairs), n)]


class RunIdentity(_Strict):
    """What every section of a run shares: the granularity, its candles' frequency and
    the pairs."""

    granularity: Literal["hour", "day"]
    freq: str = Field(description="Pandas frequency of the candles, e.g. '1h' or '1D'.")
    pairs: list[str] = Field(min_length=1)

    @field_validator("freq")
    @classmethod
    def _freq(cls, value: str) -> str:
        pd.Timedelta(value)
        return value

    @field_validator("pairs")
    @classmethod
    def _pairs(cls, value: list[str]) -> list[str]:
        bad = [p for p in value if p.count("/") != 1 or p != p.strip().upper()]
        if bad:
            raise ValueError(f"pairs must look like 'BTC/USDT' (upper case, one '/'): {bad}")
        if len(set(value)) != len(value):
            raise ValueError(f"pairs must be unique: {value}")
        return value

    @property
    def step(self) -> pd.Timedelta:
        """One candle's duration."""
        return pd.Timedelta(self.freq)


class LoadSection(RunIdentity):
    """What the load step receives: where the candles come from."""

    data: DataSettings


class ValidateSection(RunIdentity):
    """What the validate step receives: the OHLCV contract's rules."""

    validation: ValidationSettings


class FitSection(RunIdentity):
    """What a fit step receives: everything that decides a fitted model and its backtest,
    and nothing else (so a change to ``deploy:`` or ``monitoring:`` keeps its cache)."""

    horizon: int = Field(gt=0)
    seed: int = 42
    candidates: dict[str, CandidateSpec] = Field(min_length=1)
    evaluation: EvaluationSettings
    scale: ScaleSettings = ScaleSettings()


class Settings(FitSection, ValidateSection, LoadSection):
    """The whole run configuration (``parameters.config`` of ``configs/<gran>.yaml``),
    validated once per command; the cached steps receive only their section
    (:meth:`section`)."""

    gates: Gates = Gates()
    deploy: DeploySettings
    service: ServiceSettings
    monitoring: MonitoringSettings

    def section(self, kind: type[S]) -> S:
        """The part of these settings that ``kind`` (:class:`LoadSection`,
        :class:`ValidateSection`, :class:`FitSection`) holds, without validating again."""
        return kind.model_construct(**{name: getattr(self, name) for name in kind.model_fields})

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.evaluation.baseline not in self.candidates:
            raise ValueError(
                f"evaluation.baseline {self.evaluation.baseline!r} is not a candidate "
                f"(candidates: {sorted(self.candidates)})"
            )
        ev = self.evaluation
        if ev.window + ev.calibration_window + self.validation.min_history // 2 > (
            self.data.history
        ):
            raise ValueError("data.history is too short for the evaluation and calibration windows")
        if self.data.source == "files" and self.data.data_dir is None:
            raise ValueError("source 'files' needs data.data_dir (DATA_DIR=...)")
        return self

    @property
    def experiment_name(self) -> str:
        """The MLflow experiment of this granularity's runs (training, monitoring, people's
        promotions and rollbacks)."""
        return f"cryptocast-{self.granularity}"
