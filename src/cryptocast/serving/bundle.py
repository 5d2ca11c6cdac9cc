"""The served artefact: one forecaster file per pair plus a manifest, in one directory.

Layout of ``models/<gran>_models/`` (and of the MLflow model's ``bundle`` artefact)::

    manifest.json      granularity, horizon, pairs -> {file, candidate, metrics, quantile
                       calibration}, MLflow model name/version/run, data provenance and
                       fingerprint, creation time
    BTC-USDT.zip       the fitted forecaster (Darts' own save) + its price history
    ETH-USDT.zip

:func:`publish` replaces a directory so that readers see either the old or the new bundle,
never a mix: the new one is written beside it, then swapped in by renames; a crash between
the two renames is healed on the next :func:`publish` or :func:`load_bundle`.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.config import ValidationSettings, central_levels
from cryptocast.contracts import (
    ContractError,
    Manifest,
    PairEntry,
    RequestError,
    forecast_frame,
    pair_slug,
    to_ohlcv,
)
from cryptocast.data.validation import DataValidationError, validate
from cryptocast.locks import pid_alive
from cryptocast.modeling import uncertainty
from cryptocast.modeling.forecasting import Forecaster

MANIFEST = "manifest.json"
HISTORY = "history.parquet"


@dataclass
class Bundle:
    """A loaded bundle: the manifest, one fitted forecaster per pair, and the close prices (and
    volumes) each forecasts from."""

    manifest: Manifest
    forecasters: dict[str, Forecaster]
    histories: dict[str, pd.Series]  # close prices
    volumes: dict[str, pd.Series] = field(default_factory=dict)  # bundles since past covariates

    @property
    def pairs(self) -> list[str]:
        """The pairs the bundle serves, sorted."""
        return sorted(self.forecasters)

    def forecast(
        self, pair: str, horizon: int | None = None, candles: pd.DataFrame | None = None
    ) -> pd.DataFrame:
        """Forecast frame for ``pair`` from the end of its history, or of ``candles``
        (recent OHLCV rows that continue the history) when given."""
        horizon = self.checked_horizon(pair, horizon)
        history, volume = self.histories[pair], self.volumes.get(pair)
        if candles is not None:
            history, volume = self.condition(pair, candles)
        fc = self.forecasters[pair]
        volumes = self.volumes | ({pair: volume} if volume is not None else {})
        covariates = fc.covariate_frame(pair, self.histories | {pair: history}, volumes)
        point = fc.predict(history, horizon, covariates)
        lo, hi, quantiles = self.bands(pair, point, history)
        step = pd.Timedelta(self.manifest.freq)
        origin = history.index[-1]
        version = self.manifest.model_version
        return forecast_frame(
            [
                {
                    "pair": pair,
                    "origin": origin,
                    "target_time": origin + step * (k + 1),
                    "step": k + 1,
                    "forecast": float(point[k]),
                    "lower": float(lo[k]),
                    "upper": float(hi[k]),
                    "quantiles": json.dumps({q: float(v[k]) for q, v in quantiles.items()}),
                    "model_version": version,
                }
                for k in range(horizon)
            ]
        )

    def bands(
        self, pair: str, point: np.ndarray, history: pd.Series
    ) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(lower, upper, quantiles) around ``point`` forecast from the end of ``history``:
        the pair's calibrated quantiles, or, for bundles from before calibration, the
        Gaussian band and no quantiles."""
        m = self.manifest
        steps = np.arange(1, len(point) + 1)
        table = m.pairs[pair].calibration if pair in m.pairs else {}
        if not table or m.volatility_halflife is None:
            sigma = float(uncertainty.volatility(history, m.interval_lookback).iloc[-1])
            lo, hi = uncertainty.gaussian_band(point, uncertainty.spread(sigma, steps), m.interval)
            return lo, hi, {}
        sigma = float(uncertainty.ewma_volatility(history, m.volatility_halflife).iloc[-1])
        scale = uncertainty.spread(sigma, steps)
        quantiles = uncertainty.quantile_paths(point, scale, uncertainty.at_steps(table, steps))
        lo, hi = (uncertainty.level_key(q) for q in central_levels(m.interval))
        return quantiles[lo], quantiles[hi], quantiles

    def checked_horizon(self, pair: str, horizon: int | None) -> int:
        """``horizon`` (default: the maximum) if ``pair`` is served and it is allowed."""
        if pair not in self.forecasters:
            raise RequestError(f"unknown pair {pair!r}; this model serves {self.pairs}")
        max_h = self.manifest.horizon
        horizon = horizon or max_h
        if horizon > max_h:
            raise RequestError(f"horizon {horizon} exceeds the maximum {max_h}")
        return horizon

    def condition(self, pair: str, candles: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
        """The stored close and volume histories with ``candles`` appended (overlaps
        replaced).

        ``candles`` must follow the OHLCV contract and the manifest's validation rules
        (no gap filling here), and must continue the history without a gap."""
        if candles.empty:
            raise RequestError("candles: empty list")
        try:
            frame = to_ohlcv(candles.assign(pair=pair))
        except (ContractError, ValueError, TypeError) as exc:
            raise RequestError(f"candles: {exc}") from exc
        rules = ValidationSettings.model_validate(
            self.manifest.validation | {"min_history": 1, "max_fill_gap": 0}
        )
        try:
            validate(frame, rules, freq=self.manifest.freq, pairs=[pair])
        except DataValidationError as exc:
            lines = [v.line() for v in exc.report.violations]
            raise RequestError("candles violate the OHLCV contract: " + "; ".join(lines)) from exc
        history = self.histories[pair]
        step = pd.Timedelta(self.manifest.freq)
        first = frame["timestamp"].iloc[0]
        if first > history.index[-1] + step:
            raise RequestError(
                f"candles must continue the model's history: its last candle is "
                f"{history.index[-1]}, the first given is {first}"
            )
        if (first - history.index[-1]) % step != pd.Timedelta(0):
            raise RequestError(
                f"candles are off the model's {self.manifest.freq} grid: the first given is "
                f"{first}, the history's last candle is {history.index[-1]}"
            )
        times = pd.DatetimeIndex(frame["timestamp"])
        new = pd.Series(frame["close"].to_numpy(), index=times)
        kept = history[history.index < first]
        if len(kept):
            jump = abs(float(np.log(new.iloc[0] / kept.iloc[-1])))
            if not jump <= rules.max_abs_log_return:
                raise RequestError(
                    f"candles do not join the model's history plausibly: close "
                    f"{kept.iloc[-1]:.6g} at {kept.index[-1]} then {new.iloc[0]:.6g} at {first} "
                    f"(|log return| {jump:.2f} > {rules.max_abs_log_return}); a forecast is "
                    "not computed on them"
                )
        volume = self.volumes.get(pair, pd.Series(np.nan, index=history.index))
        new_volume = pd.Series(frame["volume"].to_numpy(dtype="float64"), index=times)
        return pd.concat([kept, new]), pd.concat([volume[volume.index < first], new_volume])


def _history_bytes(history: pd.Series, volume: pd.Series | None) -> bytes:
    frame = history.rename("close").to_frame()
    if volume is not None:
        frame["volume"] = volume.reindex(history.index).to_numpy(dtype="float64")
    buf = io.BytesIO()
    frame.to_parquet(buf)
    return buf.getvalue()


def write_bundle(
    directory: Path,
    forecasters: dict[str, Forecaster],
    histories: dict[str, pd.Series],
    manifest: Manifest,
    volumes: dict[str, pd.Series] | None = None,
) -> Path:
    """Write a bundle into ``directory`` (created; must not exist): per pair its
    forecaster, its close history and (past covariates) its volume history."""
    directory = Path(directory)
    directory.mkdir(parents=True)
    pairs = {}
    for pair, fc in forecasters.items():
        path = directory / f"{pair_slug(pair)}.zip"
        fc.save(path)
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr(HISTORY, _history_bytes(histories[pair], (volumes or {}).get(pair)))
        known = manifest.pairs.get(pair, PairEntry()).model_dump(exclude_unset=True)
        pairs[pair] = PairEntry(file=path.name, candidate=fc.name, kind=fc.kind, **known)
    full = manifest.model_copy(update={"pairs": pairs})
    (directory / MANIFEST).write_text(full.model_dump_json(indent=2))
    return directory


def _heal(final: Path) -> None:
    backup = final.with_name(f".{final.name}.old")
    if not final.exists() and backup.exists():
        backup.rename(final)  # a crash hit between the two renames of publish()
    elif backup.exists():
        shutil.rmtree(backup)


def publish(staging: Path, final: Path) -> None:
    """Swap ``staging`` in as ``final``; the previous ``final`` is removed afterwards."""
    final = Path(final)
    _heal(final)
    backup = final.with_name(f".{final.name}.old")
    if final.exists():
        final.rename(backup)
    os.rename(staging, final)
    if backup.exists():
        shutil.rmtree(backup)


def staging_dir(final: Path) -> Path:
    """A fresh path ``<parent>/.<name>.staging-<pid>-<id>/bundle`` for a bundle about to be
    published to ``final`` (same file system, so :func:`publish` can rename it; the
    constant last component names the MLflow artefact ``bundle``). Staging directories
    left by processes that died are removed."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    for old in final.parent.glob(f".{final.name}.staging-*"):
        pid = old.name.rsplit("staging-", 1)[1].split("-")[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)
    parent = final.with_name(f".{final.name}.staging-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    parent.mkdir()
    return parent / "bundle"


def read_manifest(directory: Path) -> Manifest:
    """The manifest of the bundle at ``directory``."""
    path = Path(directory) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"no model bundle at {directory} (missing {MANIFEST})")
    return Manifest.model_validate_json(path.read_text())


def load_bundle(directory: Path) -> Bundle:
    """The bundle in ``directory`` (:func:`write_bundle`); a publish that a crash cut off
    between its two renames is completed first (the previous bundle restored)."""
    directory = Path(directory)
    _heal(directory)
    manifest = read_manifest(directory)
    forecasters = {p: Forecaster.load(directory / e.file) for p, e in manifest.pairs.items()}
    frames = _history_frames(directory, manifest)
    volumes = {p: f["volume"] for p, f in frames.items() if "volume" in f}
    return Bundle(manifest, forecasters, {p: f["close"] for p, f in frames.items()}, volumes)


def _history_frames(directory: Path, manifest: Manifest) -> dict[str, pd.DataFrame]:
    out = {}
    for pair, entry in manifest.pairs.items():
        with zipfile.ZipFile(directory / entry.file) as zf:
            out[pair] = pd.read_parquet(io.BytesIO(zf.read(HISTORY)))
    return out


def load_histories(directory: Path, manifest: Manifest | None = None) -> dict[str, pd.Series]:
    """The close history of every pair of a bundle, without loading its models."""
    directory = Path(directory)
    if manifest is None:
        manifest = read_manifest(directory)
    return {p: f["close"] for p, f in _history_frames(directory, manifest).items()}
