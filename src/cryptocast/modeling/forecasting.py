"""Forecasters: Darts models behind one small ``fit`` / ``predict`` / ``backtest`` API.

Each candidate models one *space* of the close price and maps its output back to prices:

* ``price``      - the model sees prices as they are (the naive last value);
* ``log_price``  - log prices (drift there is constant geometric growth);
* ``log_return`` - standardised one-step log returns; forecasts are integrated from the
  last observed close. Torch networks need this scaling or they diverge.

Uncertainty is not the forecaster's business: :mod:`cryptocast.modeling.uncertainty` calibrates
quantiles around any candidate's point path from that candidate's own backtest errors.

The candidate registry :data:`~cryptocast.modeling.candidates.CANDIDATES` maps a ``kind``
(used in the YAML config) to a builder; ``configs/<gran>.yaml`` names the candidates and
their parameters.
"""

from __future__ import annotations

import importlib
import json
import logging
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cryptocast.modeling.candidates import CANDIDATES, MULTI_SERIES, quiet_lightning

log = logging.getLogger(__name__)

FORMAT_VERSION = 1


def past_covariates(
    closes: Mapping[str, pd.Series],
    volumes: Mapping[str, pd.Series],
    pair: str,
    others: Sequence[str],
) -> pd.DataFrame:
    """Past covariates of ``pair`` on its own time index: the change of log(1 + volume)
    and the log returns of the ``others`` pairs (0, i.e. no news, where a series has no
    value: the first candle, an other pair's missing or not yet known candle)."""
    missing = [p for p in (pair, *others) if p not in closes or (p == pair and p not in volumes)]
    if missing:
        raise ValueError(f"past covariates of {pair} need the candles of {missing}")
    index = closes[pair].index
    columns = {"volume": np.log1p(volumes[pair].reindex(index).astype("float64")).diff()}
    columns |= {f"return {q}": np.log(closes[q]).diff().reindex(index) for q in others}
    return pd.DataFrame(columns, index=index).fillna(0.0)


def _to_darts(values: pd.Series | pd.DataFrame):
    """A Darts series on a naive-UTC index with a fixed (Tick) frequency.

    The frequency is given as a Timedelta offset (``24 * Hours`` rather than ``Day``):
    with pandas 3, ``Day`` is a calendar offset and Darts 0.48's ``Timedelta // freq``
    fails on it."""
    from darts import TimeSeries
    from pandas.tseries.frequencies import to_offset

    idx = pd.DatetimeIndex(values.index).tz_convert("UTC").tz_localize(None)
    step = idx[-1] - idx[-2]
    return TimeSeries.from_times_and_values(
        idx, values.to_numpy(dtype="float64"), freq=to_offset(step)
    )


def _aligned(covariates: pd.DataFrame, target: pd.Series):
    """``covariates`` as a Darts series on the index of ``target`` (a transformed close)."""
    return _to_darts(covariates.reindex(target.index).fillna(0.0))


@dataclass
class Forecaster:
    """One fitted candidate for one pair."""

    name: str
    kind: str
    params: dict
    horizon: int
    seed: int
    model: Any = None
    space: str = "price"
    global_model: bool = False
    validation: int = 0  # early-stopping candles (torch kinds; see candidates._torch)
    # None: no past covariates; else the other pairs whose returns are among them
    covariates: tuple[str, ...] | None = None
    state: dict[str, float] = field(default_factory=dict)  # mu, sd of training log returns
    # checkpoint of a loaded torch model: Darts only writes one when it still holds a
    # Lightning trainer, so saving a loaded model again must write it (see save()).
    checkpoint: bytes | None = field(default=None, repr=False)

    @classmethod
    def build(cls, name: str, kind: str, params: dict, horizon: int, seed: int) -> Forecaster:
        """An unfitted forecaster of candidate ``kind`` (a key of
        :data:`~cryptocast.modeling.candidates.CANDIDATES`) with its parameters. Raises
        ``KeyError`` naming the known kinds for an unknown one."""
        if kind not in CANDIDATES:
            raise KeyError(f"unknown candidate kind {kind!r}; known: {sorted(CANDIDATES)}")
        built = CANDIDATES[kind](dict(params), horizon, seed)
        return cls(
            name,
            kind,
            dict(params),
            horizon,
            seed,
            built.model,
            built.space,
            built.global_model,
            built.validation,
            () if built.covariates else None,
        )

    # -- transforms ---------------------------------------------------------------------
    def _transform(self, close: pd.Series) -> pd.Series:
        if self.space == "price":
            return close
        logp = np.log(close)
        if self.space == "log_price":
            return logp
        r = logp.diff().dropna()
        return (r - self.state["mu"]) / self.state["sd"]

    def _to_price(self, values: np.ndarray, last_close: float) -> np.ndarray:
        if self.space == "price":
            return values
        if self.space == "log_price":
            return np.exp(values)
        r = values * self.state["sd"] + self.state["mu"]
        return last_close * np.exp(np.cumsum(r))

    # -- API ------------------------------------------------------------------------------
    def fit(self, close: pd.Series) -> Forecaster:
        """Fit on ``close`` (a UTC-indexed Series of close prices, regular frequency)."""
        self._standardise(close)
        target = _to_darts(self._transform(close))
        if not self.validation:
            self.model.fit(target)
            return self
        context = self.model.input_chunk_length
        if len(target) < self.validation + 2 * (context + self.horizon):
            raise ValueError(
                f"{self.name}: {len(target)} candles cannot hold out {self.validation} for "
                f"early stopping and still train (input {context}, horizon {self.horizon})"
            )
        fit, val = target[: -self.validation], target[-(self.validation + context) :]
        self.model.fit(fit, val_series=val)
        log.info(
            "%s: %d of at most %d epochs (early stopping on %d held-out candles)",
            self.name,
            self.model.epochs_trained,
            self.model.n_epochs,
            self.validation,
        )
        return self

    def _standardise(self, close: pd.Series) -> None:
        r = np.log(close).diff().dropna()
        self.state = {"mu": float(r.mean()), "sd": float(r.std() or 1.0)}

    @classmethod
    def fit_many(
        cls,
        name: str,
        kind: str,
        params: dict,
        horizon: int,
        seed: int,
        closes: Mapping[str, pd.Series],
        volumes: Mapping[str, pd.Series] | None = None,
    ) -> dict[str, Forecaster]:
        """One multi-series model fitted on every pair's ``close`` at once; returns a
        forecaster per pair (each with its own standardisation, all sharing the model).
        A model with past covariates takes each pair's from ``volumes`` and the other
        pairs' ``closes``."""
        first = cls.build(name, kind, params, horizon, seed)
        out, targets, past = {}, [], []
        for pair, close in closes.items():
            others = None if first.covariates is None else tuple(q for q in closes if q != pair)
            fc = replace(first, params=dict(params), covariates=others, state={})
            fc._standardise(close)
            out[pair] = fc
            target = fc._transform(close)
            targets.append(_to_darts(target))
            if others is not None:
                past.append(_aligned(fc.covariate_frame(pair, closes, volumes or {}), target))
        first.model.fit(targets, past_covariates=past or None)
        return out

    def covariate_frame(
        self, pair: str, closes: Mapping[str, pd.Series], volumes: Mapping[str, pd.Series]
    ) -> pd.DataFrame | None:
        """The past covariates this forecaster of ``pair`` takes, or None."""
        if self.covariates is None:
            return None
        return past_covariates(closes, volumes, pair, self.covariates)

    def _past(self, covariates: pd.DataFrame | None, target: pd.Series) -> dict:
        if self.covariates is None:
            return {}
        if covariates is None:
            raise ValueError(f"{self.name} needs its past covariates (covariate_frame)")
        return {"past_covariates": _aligned(covariates, target)}

    @staticmethod
    def multi_series(kind: str) -> bool:
        """Whether candidates of ``kind`` are fitted on all pairs at once (:meth:`fit_many`)."""
        return kind in MULTI_SERIES

    def predict(
        self, history: pd.Series, n: int | None = None, covariates: pd.DataFrame | None = None
    ) -> np.ndarray:
        """Price path for the ``n`` candles after ``history`` (default: the horizon);
        ``covariates``: its :meth:`covariate_frame`, for a model that takes them."""
        n = n or self.horizon
        transformed = self._transform(history)
        target = _to_darts(transformed)
        if self.global_model:
            past = self._past(covariates, transformed)
            out = self.model.predict(n, series=target, verbose=False, **past)
        else:
            self.model.fit(target)
            out = self.model.predict(n, verbose=False)
        return self._to_price(out.values()[:, 0], float(history.iloc[-1]))

    def backtest(
        self,
        close: pd.Series,
        *,
        window: int,
        stride: int,
        covariates: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Rolling-origin forecasts over the last ``window`` candles of ``close``.

        Origins are ``stride`` candles apart; each forecast covers ``horizon`` candles and
        only uses candles before its origin. Returns one row per (origin, step) with
        ``target_time, origin, step, forecast, actual``.
        """
        transformed = self._transform(close)
        target = _to_darts(transformed)
        start = pd.Timestamp(close.index[len(close) - window]).tz_convert("UTC").tz_localize(None)
        forecasts = self.model.historical_forecasts(
            target,
            start=start,
            forecast_horizon=self.horizon,
            stride=stride,
            retrain=not self.global_model,
            last_points_only=False,
            overlap_end=False,
            verbose=False,
            **self._past(covariates, transformed),
        )
        naive_idx = pd.DatetimeIndex(close.index).tz_convert("UTC").tz_localize(None)
        firsts = naive_idx.get_indexer([fc.start_time() for fc in forecasts])
        values = close.to_numpy(dtype="float64")
        steps = np.arange(self.horizon)
        # one block of rows per origin, built with arrays (per-row pandas indexing cost
        # more than Darts' own historical_forecasts)
        prices = [
            self._to_price(fc.values()[:, 0], float(values[first - 1]))
            for fc, first in zip(forecasts, firsts, strict=True)
        ]
        targets = (firsts[:, None] + steps[None, :]).ravel() if len(firsts) else steps[:0]
        return pd.DataFrame(
            {
                "target_time": close.index[targets],
                "origin": close.index[np.repeat(firsts - 1, self.horizon)],
                "step": np.tile(steps + 1, len(firsts)),
                "forecast": np.concatenate(prices) if prices else np.empty(0),
                "actual": values[targets],
            }
        )

    # -- persistence: one zip file per forecaster ---------------------------------------
    def save(self, path: Path) -> Path:
        """Write the forecaster as one zip file (Darts' own save inside)."""
        path = Path(path)
        with tempfile.TemporaryDirectory() as tmp:
            self.model.save(str(Path(tmp) / "model.pt"))
            ckpt = Path(tmp) / "model.pt.ckpt"
            if not ckpt.exists() and self.checkpoint is not None:
                ckpt.write_bytes(self.checkpoint)
            meta = {
                "format": FORMAT_VERSION,
                "name": self.name,
                "kind": self.kind,
                "params": self.params,
                "horizon": self.horizon,
                "seed": self.seed,
                "space": self.space,
                "global_model": self.global_model,
                "state": self.state,
                "covariates": self.covariates,
                "model_class": f"{type(self.model).__module__}:{type(self.model).__name__}",
            }
            (Path(tmp) / "meta.json").write_text(json.dumps(meta, indent=2))
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
                for f in sorted(Path(tmp).iterdir()):
                    zf.write(f, f.name)
        return path

    @classmethod
    def load(cls, path: Path) -> Forecaster:
        """The forecaster :meth:`save` wrote at ``path``, torch models mapped to the CPU. Raises
        ``ValueError`` for a file of another format version."""
        with tempfile.TemporaryDirectory(prefix="cryptocast-model-") as tmp:
            with zipfile.ZipFile(path) as zf:
                zf.extractall(tmp)
            meta = json.loads((Path(tmp) / "meta.json").read_text())
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"{path}: forecaster format {meta.get('format')} unsupported")
            module, _, name = meta["model_class"].partition(":")
            model_cls = getattr(importlib.import_module(module), name)
            torch_model = hasattr(model_cls, "load_from_checkpoint")
            if torch_model:
                quiet_lightning()
            kwargs = {"map_location": "cpu"} if torch_model else {}
            model = model_cls.load(str(Path(tmp) / "model.pt"), **kwargs)
            ckpt = Path(tmp) / "model.pt.ckpt"
            checkpoint = ckpt.read_bytes() if ckpt.exists() else None
        return cls(
            meta["name"],
            meta["kind"],
            meta["params"],
            meta["horizon"],
            meta["seed"],
            model,
            meta["space"],
            meta["global_model"],
            covariates=None if meta.get("covariates") is None else tuple(meta["covariates"]),
            state=meta["state"],
            checkpoint=checkpoint,
        )
