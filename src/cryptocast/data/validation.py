"""The OHLCV data contract, checked rule by rule.

:func:`validate` repairs only what a documented rule allows and reports every repair;
everything else is a violation. All violations are collected (rule, pair, count, first
offending timestamps) before :class:`DataValidationError` is raised, so one run shows the
whole picture. Repair rules:

* ``exact_duplicates``: identical rows for one timestamp are dropped;
* ``near_duplicates``: rows for one timestamp whose prices differ by at most
  ``duplicate_rel_tolerance`` (relative) are merged into their mean (which keeps OHLC valid);
* ``short_gaps``: runs of at most ``max_fill_gap`` missing candles are filled with flat
  candles (open=high=low=close=previous close, volume 0).

Violation rules: ``missing_values``, ``conflicting_duplicates``, ``irregular_timestamps``,
``long_gaps``, ``non_positive_price``, ``ohlc_inconsistent``, ``negative_volume``,
``implausible_jump`` (|log| move close-to-close, open-to-previous-close or open-to-close
above ``max_abs_log_return``), ``insufficient_history``, ``stale_data`` (live sources only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from cryptocast.config import ValidationSettings
from cryptocast.contracts import PRICE_COLUMNS, to_ohlcv
from cryptocast.errors import UserError

MAX_EXAMPLES = 5
LOUD_LOSS = 3  # rows of a pair dropped by repairs before the report warns about them


@dataclass(frozen=True)
class Finding:
    """One rule's hits in one pair: how many and the first few times (a repair or a violation)."""

    rule: str
    pair: str
    count: int
    first: list[str]
    detail: str = ""

    def line(self) -> str:
        """The finding in one line: ``[rule] pair: N x, first at ... (detail)``."""
        extra = f" ({self.detail})" if self.detail else ""
        return f"[{self.rule}] {self.pair}: {self.count} x, first at {', '.join(self.first)}{extra}"


@dataclass
class ValidationReport:
    """What validation repaired, what it found wrong, and per pair the rows loaded, kept
    and filled."""

    repairs: list[Finding] = field(default_factory=list)
    violations: list[Finding] = field(default_factory=list)
    rows: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether no rule was violated (repairs do not count)."""
        return not self.violations

    def to_dict(self) -> dict:
        """The report as plain JSON-ready data (logged as the validate step's artifact)."""
        return {
            "ok": self.ok,
            "repairs": [asdict(f) for f in self.repairs],
            "violations": [asdict(f) for f in self.violations],
            "rows": self.rows,
        }

    def format(self) -> str:
        """The report in words: OK or FAILED, violations, repairs, and a warning for a pair that
        lost many of its loaded rows."""
        out = [f"data validation: {'OK' if self.ok else 'FAILED'}"]
        if self.violations:
            out.append(f"{len(self.violations)} violation(s):")
            out += [f"  {v.line()}" for v in self.violations]
        if self.repairs:
            out.append(f"{len(self.repairs)} repair(s):")
            out += [f"  {r.line()}" for r in self.repairs]
        for pair, n in self.rows.items():
            lost = n["loaded"] - n["clean"] + n["filled"]
            if lost > LOUD_LOSS:
                out.append(
                    f"WARNING {pair}: {lost:,} of {n['loaded']:,} loaded rows were dropped by "
                    "the rules above; check that this is what you expect"
                )
        return "\n".join(out)


class DataValidationError(UserError, ValueError):
    """Raised with the full report when any rule is violated."""

    def __init__(self, report: ValidationReport):
        self.report = report
        super().__init__(
            report.format()
            + "\nNothing was trained or deployed. Fix the data (or the rule's threshold in "
            "configs/<gran>.yaml under validation:) and run again."
        )


def _stamps(ts: pd.Series | pd.Index) -> list[str]:
    return [pd.Timestamp(t).strftime("%Y-%m-%d %H:%M") for t in list(ts)[:MAX_EXAMPLES]]


def _finding(rule: str, pair: str, ts: pd.Series | pd.Index, detail: str = "") -> Finding:
    return Finding(rule=rule, pair=pair, count=len(ts), first=_stamps(ts), detail=detail)


def _drop(
    g: pd.DataFrame,
    bad: pd.Series,
    report: ValidationReport,
    rule: str,
    pair: str,
    detail: str = "",
) -> pd.DataFrame:
    """``g`` without the ``bad`` rows, which are reported as violations of ``rule``."""
    if not bad.any():
        return g
    report.violations.append(_finding(rule, pair, g.loc[bad, "timestamp"], detail))
    return g[~bad].reset_index(drop=True)


def _deduplicate(g: pd.DataFrame, pair: str, tol: float, report: ValidationReport) -> pd.DataFrame:
    exact = g.duplicated(keep="first")
    if exact.any():
        report.repairs.append(_finding("exact_duplicates", pair, g.loc[exact, "timestamp"]))
        g = g[~exact]
    dup = g["timestamp"].duplicated(keep=False)
    if not dup.any():
        return g
    groups = g[dup].groupby("timestamp")
    prices = groups[list(PRICE_COLUMNS)]
    spread = ((prices.max() - prices.min()) / prices.min().abs()).max(axis=1)
    conflicting = spread[spread > tol].index
    mergeable = spread[spread <= tol].index
    if len(conflicting):
        report.violations.append(
            _finding(
                "conflicting_duplicates",
                pair,
                conflicting,
                f"prices differ by up to {spread.max():.2%}, tolerance {tol:.4%}",
            )
        )
    if len(mergeable):
        report.repairs.append(
            _finding("near_duplicates", pair, mergeable, f"merged to mean, tolerance {tol:.4%}")
        )
    merged = groups.mean(numeric_only=True).loc[mergeable].reset_index()
    merged["pair"] = pair
    keep = g[~dup | g["timestamp"].isin(conflicting)].drop_duplicates("timestamp")
    return pd.concat([keep, merged], ignore_index=True).sort_values("timestamp")


def _fill_gaps(
    g: pd.DataFrame, pair: str, step: pd.Timedelta, max_gap: int, report: ValidationReport
) -> pd.DataFrame:
    full = pd.date_range(g["timestamp"].iloc[0], g["timestamp"].iloc[-1], freq=step)
    missing = full.difference(pd.DatetimeIndex(g["timestamp"]))
    if missing.empty:
        return g
    # split the missing stamps into runs of consecutive candles
    breaks = np.flatnonzero(np.diff(missing.asi8) != step.value) + 1
    runs = [
        missing[a:b] for a, b in zip(np.r_[0, breaks], np.r_[breaks, len(missing)], strict=True)
    ]
    long_runs = [r for r in runs if len(r) > max_gap]
    if long_runs:
        report.violations.append(
            _finding(
                "long_gaps",
                pair,
                pd.DatetimeIndex([r[0] for r in long_runs]),
                f"{len(long_runs)} gap(s), longest {max(len(r) for r in long_runs)} candles, "
                f"max_fill_gap {max_gap}",
            )
        )
    short = [r for r in runs if len(r) <= max_gap]
    fill_at = pd.DatetimeIndex([t for r in short for t in r])
    if len(fill_at):
        report.repairs.append(
            _finding("short_gaps", pair, fill_at, f"{len(short)} gap(s) filled with flat candles")
        )
    out = g.set_index("timestamp").reindex(g["timestamp"].tolist() + list(fill_at)).sort_index()
    prev_close = out["close"].ffill()
    filled = out["open"].isna()
    for col in PRICE_COLUMNS:
        out.loc[filled, col] = prev_close[filled]
    out.loc[filled, "volume"] = 0.0
    out["pair"] = pair
    return out.rename_axis("timestamp").reset_index()


def _check_values(
    g: pd.DataFrame, pair: str, cfg: ValidationSettings, report: ValidationReport
) -> None:
    ts = g["timestamp"]
    checks = {
        "non_positive_price": (g[list(PRICE_COLUMNS)] <= 0).any(axis=1),
        "ohlc_inconsistent": (g["low"] > g[["open", "close"]].min(axis=1))
        | (g["high"] < g[["open", "close"]].max(axis=1)),
        "negative_volume": g["volume"] < 0,
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        prev_close = g["close"].shift()
        # close and open against the previous close, and open against its own close
        # (the latter catches a bad print in the very first candle)
        jumps = np.fmax(
            np.fmax(
                np.abs(np.log(g["close"] / prev_close)), np.abs(np.log(g["open"] / prev_close))
            ),
            np.abs(np.log(g["open"] / g["close"])),
        )
    checks["implausible_jump"] = jumps > cfg.max_abs_log_return
    for rule, bad in checks.items():
        if bad.any():
            detail = (
                f"|log return| up to {jumps[bad].max():.2f} > {cfg.max_abs_log_return}"
                if rule == "implausible_jump"
                else ""
            )
            report.violations.append(_finding(rule, pair, ts[bad], detail))


def validate(
    frame: pd.DataFrame,
    cfg: ValidationSettings,
    *,
    freq: str,
    pairs: list[str],
    live: bool = False,
    now: pd.Timestamp | None = None,
) -> tuple[pd.DataFrame, ValidationReport]:
    """Check and repair ``frame``; return the clean frame and the report.

    Raises :class:`DataValidationError` listing every violation when any rule fails.
    """
    frame = to_ohlcv(frame)
    step = pd.Timedelta(freq)
    now = now or pd.Timestamp.now(tz="UTC")
    report = ValidationReport()
    clean: list[pd.DataFrame] = []
    for pair in pairs:
        g = frame[frame["pair"] == pair].reset_index(drop=True)
        raw_rows = len(g)
        if g.empty:
            report.violations.append(Finding("insufficient_history", pair, 0, [], "no candles"))
            continue
        future = g["timestamp"] > now
        g = _drop(
            g,
            future,
            report,
            "future_timestamp",
            pair,
            f"dated after now, {now:%Y-%m-%d %H:%M} UTC",
        )
        g = _drop(
            g, g[[*PRICE_COLUMNS, "volume"]].isna().any(axis=1), report, "missing_values", pair
        )
        off_grid = (g["timestamp"] - g["timestamp"].iloc[0]) % step != pd.Timedelta(0)
        g = _drop(g, off_grid, report, "irregular_timestamps", pair, f"not on the {freq} grid")
        g = _deduplicate(g, pair, cfg.duplicate_rel_tolerance, report)
        g = _fill_gaps(g.reset_index(drop=True), pair, step, cfg.max_fill_gap, report)
        _check_values(g, pair, cfg, report)
        if len(g) < cfg.min_history:
            report.violations.append(
                Finding(
                    "insufficient_history",
                    pair,
                    len(g),
                    _stamps(g["timestamp"][:1]),
                    f"{len(g)} candles < min_history {cfg.min_history}",
                )
            )
        if live and cfg.max_staleness is not None:
            age = now - (g["timestamp"].iloc[-1] + step)
            if age > pd.Timedelta(cfg.max_staleness):
                report.violations.append(
                    _finding(
                        "stale_data",
                        pair,
                        g["timestamp"].iloc[-1:],
                        f"last candle closed {age} ago > {cfg.max_staleness}",
                    )
                )
        filled = sum(f.count for f in report.repairs if f.pair == pair and f.rule == "short_gaps")
        report.rows[pair] = {"loaded": raw_rows, "clean": len(g), "filled": filled}
        clean.append(g)
    if not report.ok:
        raise DataValidationError(report)
    return to_ohlcv(pd.concat(clean, ignore_index=True)), report
