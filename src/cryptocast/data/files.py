"""Read OHLCV candles from a directory of CSV or Parquet files.

The layouts people have (docs/data.md, "Data sources", shows one example of each):

* exports of ccxt, pandas or a warehouse: a time column and ``open, high, low, close,
  volume``, optionally ``pair``/``symbol``; times as ISO 8601 strings (naive = UTC) or
  epoch numbers, the unit (s, ms, us, ns) read per value from its size;
* CryptoDataDownload CSVs of any exchange or instrument: preamble lines (the site's URL)
  before the header, ``unix,date,symbol,open,high,low,close,Volume <BASE>,Volume
  <QUOTE>[,tradecount]``, newest first, ``unix`` in milliseconds for recent rows and in
  seconds for older ones (rule ``cdd_overlap`` below);
* finance sites' daily downloads (``BTC-USD.csv``: ``Date, Open, High, Low, Close,
  Adj Close, Volume``): ``Close`` is the close used (``Adj Close`` is the same number for
  a crypto pair, which pays no dividends and has no splits);
* Parquet files with those columns, or with the times as a DatetimeIndex.

The header row is found (not assumed to be the first line), the delimiter sniffed
(``, ; TAB |``), a UTF-8 byte-order mark ignored, and column names matched case-, space-
and underscore-insensitively through one alias table (:mod:`cryptocast.data.filereader`
reads one file).

The pair of a file comes from the explicit ``mapping`` (file name -> pair), else its
``pair``/``symbol`` column, else its name in the common conventions
(:mod:`cryptocast.data.pairnames`), else, when the directory holds one file and the run asks for one
pair, that pair; the run logs which file became which pair and why. ``BTC/USDT``,
``BTC-USDT`` and ``BTC_USDT`` say it; ``BTCUSDT`` is split only at the configured quote
currencies (``data.quote_currencies``). Files of pairs or granularities the run does not
need, and files that cannot be read at all, are skipped with a reason; a problem in a file
the run needs (a row cut short, a price no repair rule covers) is a
:class:`FileSourceError` naming the file, the line and what was expected.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.contracts import OHLCV_COLUMNS, PRICE_COLUMNS, to_ohlcv
from cryptocast.data.filereader import (
    ALIASES,
    FileSourceError,
    RawFile,
    Unreadable,
    column_key,
    columns_of,
    read_csv,
    read_parquet,
)
from cryptocast.data.pairnames import DEFAULT_QUOTES, UnknownPair, mapping_hint, pair_of

log = logging.getLogger(__name__)
SUFFIXES = (".csv", ".parquet")


@dataclass
class FileScan:
    """What was read and what was skipped, with reasons (logged and tracked)."""

    frame: pd.DataFrame
    used: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    superseded: dict[str, dict[str, float]] = field(default_factory=dict)


def _bad(raw: RawFile, values: pd.Series, parsed: pd.Series, what: str) -> None:
    """Raise naming the first cell that has a value but did not parse."""
    bad = parsed.isna() & values.notna()
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise FileSourceError(
            f"{raw.where(i)}: {what} {values.iloc[i]!r}; fix or remove the row "
            f"({int(bad.sum())} such cell(s) in the file)"
        )


def epoch_to_utc(values: pd.Series) -> pd.Series:
    """Epoch numbers to UTC times, the unit of each value read from its size: below 1e11
    seconds, below 1e14 milliseconds (both rounded to the millisecond: CDD writes seconds
    as floats, and mixes the two), below 1e17 microseconds, else nanoseconds. A value
    out of range becomes NaT."""
    num = pd.to_numeric(values, errors="coerce")
    f = num.astype("float64").to_numpy()
    size = np.abs(f)
    ns = np.full(len(f), np.iinfo(np.int64).min, dtype="int64")  # NaT
    small = np.isfinite(f) & (size < 1e14)
    ms = np.where(size < 1e11, f * 1000.0, f)
    ns[small] = np.round(ms[small]).astype("int64") * 1_000_000
    large = np.isfinite(f) & (size >= 1e14) & (size < 9e18)
    if large.any():
        exact = num.to_numpy()[large]
        whole = exact.astype("int64") if num.dtype.kind in "iu" else np.round(exact).astype("int64")
        ns[large] = np.where(size[large] < 1e17, whole * 1000, whole)
    return pd.Series(pd.to_datetime(ns, utc=True), index=values.index)


def parse_times(raw: RawFile, col: str) -> pd.Series:
    """The times of column ``col`` as UTC: datetimes as they are, mostly numeric columns as epoch
    numbers (:func:`epoch_to_utc`), else ISO 8601 strings. Raises :class:`FileSourceError` naming
    the first cell that is missing or does not parse."""
    values = raw.frame[col]
    if pd.api.types.is_datetime64_any_dtype(values):
        return pd.to_datetime(values, utc=True)
    num = pd.to_numeric(values, errors="coerce")
    if num.notna().sum() * 2 >= values.notna().sum():  # mostly numbers: epoch times
        times = epoch_to_utc(num)
    else:
        times = pd.to_datetime(values, utc=True, format="ISO8601", errors="coerce")
    _bad(raw, values, times, f"time {col!r} is not ISO 8601 (2021-06-10 00:00:00) or epoch:")
    missing = values.isna()
    if missing.any():
        i = int(np.flatnonzero(missing.to_numpy())[0])
        raise FileSourceError(f"{raw.where(i)}: no time in column {col!r}")
    return times


# rule cdd_overlap replaces a legacy row only when its prices are this close to the API
# row's (measured on the CryptoDataDownload files: at most 0.13% on open, once 0.55%)
OVERLAP_TOLERANCE = 0.01


def epoch_units(epoch: pd.Series) -> np.ndarray:
    """The unit of each epoch number by its size: 0 seconds, 1 milliseconds, 2
    microseconds, 3 nanoseconds (the thresholds of :func:`epoch_to_utc`)."""
    return np.searchsorted([1e11, 1e14, 1e17], np.abs(epoch.to_numpy(float)), side="right")


def supersede_legacy_rows(
    raw: RawFile, frame: pd.DataFrame, epoch: pd.Series
) -> tuple[pd.DataFrame, dict[str, float]]:
    """CryptoDataDownload rule ``cdd_overlap``: where a timestamp has a row from the API
    collection (the file's finest epoch unit: milliseconds, or micro- or nanoseconds in a
    re-export) and one from the legacy collection (a coarser unit, seconds in CDD's
    files), the API row wins. The legacy rows set ``open`` to the previous close, so the
    two differ by design, within :data:`OVERLAP_TOLERANCE`; a larger difference is not
    this rule's to repair (a damaged row): :class:`FileSourceError` naming its line.
    ``frame`` holds parsed ``timestamp`` and prices, row for row with ``raw``; returns the
    kept rows and what was dropped (count, largest relative price difference)."""
    units = epoch_units(epoch)
    is_api = units == units.max()
    api_times = set(frame.loc[is_api, "timestamp"])
    legacy_dup = ~is_api & frame["timestamp"].isin(api_times).to_numpy()
    if not legacy_dup.any():
        return frame, {}
    api = frame[is_api].drop_duplicates("timestamp").set_index("timestamp")
    old = frame[legacy_dup]
    prices = list(PRICE_COLUMNS)
    a = api.loc[old["timestamp"], prices].to_numpy(float)
    rel = np.abs(a - old[prices].to_numpy(float)) / np.abs(a)
    worst = np.nanmax(rel, axis=1, initial=0.0)
    if worst.max() > OVERLAP_TOLERANCE:
        i = int(np.argmax(worst))
        row = int(np.flatnonzero(legacy_dup)[i])
        col = prices[int(np.nanargmax(rel[i]))]
        raise FileSourceError(
            f"{raw.where(row)}: {col} differs by {worst[i]:.2%} from the row of the same time "
            f"({old['timestamp'].iloc[i]:%Y-%m-%d %H:%M}) in the newer collection; rule "
            f"cdd_overlap replaces differences up to {OVERLAP_TOLERANCE:.0%} only: fix or "
            "remove the row"
        )
    return frame[~legacy_dup], {"rows": int(legacy_dup.sum()), "max_rel_diff": float(worst.max())}


def normalise(raw: RawFile, pair: str) -> tuple[pd.DataFrame, dict]:
    """One file's rows (any layout above) in the OHLCV contract, and what rule
    ``cdd_overlap`` superseded (empty if nothing)."""
    cols = columns_of(raw.frame)
    names = list(raw.frame.columns)
    if "timestamp" not in cols:
        raise FileSourceError(f"{raw.name}: no time column ({', '.join(ALIASES['timestamp'])}) "
                              f"in {names}")  # fmt: skip
    missing = [c for c in PRICE_COLUMNS if c not in cols]
    if missing:
        raise FileSourceError(f"{raw.name}: missing price columns {missing} in {names}")
    base = pair.split("/")[0].lower()
    by_norm = {column_key(c): c for c in raw.frame.columns}
    volume = cols.get("volume") or by_norm.get(f"volume {base}")
    if volume is None:
        others = [c for c in names if column_key(c).startswith("volume ")]
        hint = f"; its {others} suggest it holds another pair than {pair}" if others else ""
        raise FileSourceError(f"{raw.name}: no 'volume' or 'Volume {base.upper()}' column{hint}")
    others = [c for c in names if "close" in column_key(c).split() and c != cols["close"]]
    if others:
        log.info("files: %s: close prices from column %r (not %s)", raw.name, cols["close"],
                 ", ".join(repr(c) for c in others))  # fmt: skip
    out = pd.DataFrame({"pair": pair, "timestamp": parse_times(raw, cols["timestamp"])})
    for name, col in [*((c, cols[c]) for c in PRICE_COLUMNS), ("volume", volume)]:
        values = raw.frame[col]
        out[name] = pd.to_numeric(values, errors="coerce").astype("float64")
        _bad(raw, values, out[name], f"{name} is not a number:")
    superseded: dict = {}
    stamps = raw.frame[cols["timestamp"]]
    if not pd.api.types.is_datetime64_any_dtype(stamps):
        epoch = pd.to_numeric(stamps, errors="coerce")
        if epoch.notna().all():
            out, superseded = supersede_legacy_rows(raw, out, epoch)
    return to_ohlcv(out), superseded


def _spacing(frame: pd.DataFrame) -> pd.Timedelta | None:
    diffs = frame["timestamp"].sort_values().diff().dropna()
    diffs = diffs[diffs > pd.Timedelta(0)]
    return None if diffs.empty else diffs.median()


def span(step: pd.Timedelta | None) -> str:
    """``step`` as a person writes it: ``1 hour``, ``1 day``, ``15 minutes``."""
    if step is None or pd.isna(step):
        return "unknown"
    for unit, seconds in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        n, rest = divmod(step.total_seconds(), seconds)
        if n >= 1 and rest == 0:
            return f"{int(n)} {unit}{'' if n == 1 else 's'}"
    return str(step)


def check_directory(directory: Path) -> None:
    """Raise :class:`FileSourceError` unless ``directory`` is a folder (named: missing, a
    file, a link loop)."""
    try:
        directory.stat()
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise FileSourceError(
                f"data directory {directory} is a symbolic-link loop; point DATA_DIR at a "
                "real folder"
            ) from None
        raise FileSourceError(f"data directory {directory} does not exist (DATA_DIR=...)") from None
    if not directory.is_dir():
        raise FileSourceError(
            f"data directory {directory} is a file, not a folder: set DATA_DIR to the folder "
            f"that holds it ({directory.parent})"
        )


def read_directory(
    directory: Path,
    *,
    pairs: list[str],
    freq: str,
    mapping: dict[str, str] | None = None,
    quotes: Sequence[str] = DEFAULT_QUOTES,
) -> FileScan:
    """Read every CSV/Parquet file in ``directory`` holding one of ``pairs`` at ``freq``."""
    directory = Path(directory)
    check_directory(directory)
    mapping = mapping or {}
    step = pd.Timedelta(freq)
    scan = FileScan(frame=pd.DataFrame(columns=list(OHLCV_COLUMNS)))
    parts: list[pd.DataFrame] = []
    paths = sorted(p for p in directory.iterdir() if p.suffix.lower() in SUFFIXES)
    for path in paths:
        name = path.name
        try:
            raw = (read_parquet if path.suffix.lower() == ".parquet" else read_csv)(path, name)
        except Unreadable as exc:
            scan.skipped[name] = str(exc).removeprefix(f"{name}: ").removeprefix(f"{name}, ")
            continue
        try:
            pair, said = pair_of(raw, mapping.get(name), quotes)
        except UnknownPair as exc:
            if len(paths) != 1 or len(pairs) != 1:
                wanted = [p for p in pairs if p not in scan.used] or pairs
                raise UnknownPair(f"{exc}; {mapping_hint(name, wanted[0])}") from None
            pair, said = pairs[0], "PAIRS (the only file, the only pair asked for)"
        if pair not in pairs:
            scan.skipped[name] = f"pair {pair} not requested"
            continue
        frame, superseded = normalise(raw, pair)
        spacing = _spacing(frame)
        if spacing != step:
            scan.skipped[name] = f"candles every {span(spacing)}, run needs {span(step)}"
            continue
        scan.used.setdefault(pair, []).append(name)
        log.info("files: %s -> %s (from %s)", name, pair, said)
        parts.append(frame)
        if superseded:
            scan.superseded[name] = superseded
            log.info(
                "files: %s: rule cdd_overlap: %d legacy row(s) replaced by the API's (prices "
                "differ by at most %.3f%%)",
                name,
                superseded["rows"],
                100 * superseded["max_rel_diff"],
            )
    for name, reason in scan.skipped.items():
        log.info("files: skipped %s (%s)", name, reason)
    absent = [p for p in pairs if p not in scan.used]
    if absent:
        used = [f"{n} ({p})" for p, names in scan.used.items() for n in names]
        found = ", ".join([*used, *(f"{n} ({why})" for n, why in scan.skipped.items())])
        raise FileSourceError(
            f"no {span(step)} file in {directory} holds {', '.join(absent)} (files found: "
            f"{found or 'none'}); add its file, or leave it out of PAIRS"
        )
    scan.frame = to_ohlcv(pd.concat(parts, ignore_index=True))
    return scan
