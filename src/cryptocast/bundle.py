"""The served artefact: one forecaster file per pair plus a manifest, in one directory.

Layout of ``models/<gran>_models/`` (and of the MLflow model's ``bundle`` artefact)::

    manifest.json      granularity, horizon, pairs -> {file, candidate, metrics}, MLflow
                       model name/version/run, data fingerprint, creation time
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
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.contracts import forecast_frame, pair_slug
from cryptocast.forecasting import Forecaster, interval

MANIFEST = "manifest.json"
HISTORY = "history.parquet"


@dataclass
class Bundle:
    manifest: dict
    forecasters: dict[str, Forecaster]
    histories: dict[str, pd.Series]

    @property
    def pairs(self) -> list[str]:
        return sorted(self.forecasters)

    def forecast(self, pair: str, horizon: int | None = None) -> pd.DataFrame:
        """Forecast frame for ``pair`` from the end of its stored history."""
        if pair not in self.forecasters:
            raise KeyError(f"unknown pair {pair!r}; this model serves {self.pairs}")
        max_h = int(self.manifest["horizon"])
        horizon = horizon or max_h
        if horizon > max_h:
            raise ValueError(f"horizon {horizon} exceeds the maximum {max_h}")
        history = self.histories[pair]
        point = self.forecasters[pair].predict(history, horizon)
        lo, hi = interval(
            point,
            history,
            width=self.manifest["interval"],
            lookback=self.manifest["interval_lookback"],
        )
        step = pd.Timedelta(self.manifest["freq"])
        times = history.index[-1] + step * np.arange(1, horizon + 1)
        version = str(self.manifest.get("model_version") or "")
        return forecast_frame(
            [
                {
                    "pair": pair,
                    "timestamp": t,
                    "step": k + 1,
                    "forecast": float(point[k]),
                    "lower": float(lo[k]),
                    "upper": float(hi[k]),
                    "model_version": version,
                }
                for k, t in enumerate(times)
            ]
        )


def _history_bytes(history: pd.Series) -> bytes:
    buf = io.BytesIO()
    history.rename("close").to_frame().to_parquet(buf)
    return buf.getvalue()


def write_bundle(
    directory: Path,
    forecasters: dict[str, Forecaster],
    histories: dict[str, pd.Series],
    manifest: dict,
) -> Path:
    """Write a bundle into ``directory`` (created; must not exist)."""
    directory = Path(directory)
    directory.mkdir(parents=True)
    pairs = {}
    for pair, fc in forecasters.items():
        path = directory / f"{pair_slug(pair)}.zip"
        fc.save(path)
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr(HISTORY, _history_bytes(histories[pair]))
        pairs[pair] = {
            "file": path.name,
            "candidate": fc.name,
            "kind": fc.kind,
            **manifest.get("pairs", {}).get(pair, {}),
        }
    full = manifest | {"pairs": pairs}
    (directory / MANIFEST).write_text(json.dumps(full, indent=2, default=str))
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
    """A fresh path ``<parent>/.<name>.staging-<pid>/bundle`` for a bundle about to be
    published to ``final`` (same file system, so :func:`publish` can rename it; the
    constant last component names the MLflow artefact ``bundle``)."""
    final = Path(final)
    parent = final.with_name(f".{final.name}.staging-{os.getpid()}")
    if parent.exists():
        shutil.rmtree(parent)
    parent.mkdir(parents=True)
    return parent / "bundle"


def load_bundle(directory: Path) -> Bundle:
    directory = Path(directory)
    _heal(directory)
    manifest_path = directory / MANIFEST
    if not manifest_path.exists():
        raise FileNotFoundError(f"no model bundle at {directory} (missing {MANIFEST})")
    manifest = json.loads(manifest_path.read_text())
    forecasters, histories = {}, {}
    for pair, entry in manifest["pairs"].items():
        path = directory / entry["file"]
        forecasters[pair] = Forecaster.load(path)
        with zipfile.ZipFile(path) as zf:
            hist = pd.read_parquet(io.BytesIO(zf.read(HISTORY)))
        histories[pair] = hist["close"]
    return Bundle(manifest, forecasters, histories)
