"""Which pair a file holds: from the explicit mapping, its ``pair``/``symbol`` column or
its file name in the common conventions.

``BTC/USDT``, ``BTC-USDT`` and ``BTC_USDT`` say it; ``BTCUSDT`` is split only at the
configured quote currencies (``data.quote_currencies``, default :data:`DEFAULT_QUOTES`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from cryptocast.data.filereader import FileSourceError, RawFile, columns_of

DEFAULT_QUOTES = ("USDT", "USDC", "BUSD", "USD", "EUR")


def symbol_pair(symbol: str, quotes: Sequence[str], name: str) -> str:
    """``BTC/USDT`` from a symbol as written: with a separator, or (``BTCUSDT``) ending in
    one of the configured ``quotes``."""
    s = symbol.strip().upper()
    parts = re.split(r"[/\-_]", s)
    if len(parts) == 2 and all(parts):
        return "/".join(parts)
    for q in sorted(quotes, key=len, reverse=True):
        if s.endswith(q.upper()) and len(s) > len(q):
            return f"{s[: -len(q)]}/{q.upper()}"
    raise FileSourceError(
        f"{name}: symbol {symbol!r} names no quote currency this run knows "
        f"(data.quote_currencies: {list(quotes)}); add it there, or map the file "
        f"explicitly: data.files: {{'{name}': 'BASE/QUOTE'}}"
    )


_ASSET = r"[A-Z0-9]{2,10}"


def _asset(text: str) -> bool:
    return re.fullmatch(_ASSET, text) is not None and re.search("[A-Z]", text) is not None


def pair_from_name(name: str, quotes: Sequence[str]) -> str | None:
    """The pair a file name says in the common conventions, or None when it says none or
    more than one: ``Binance_BTCUSDT_1h.csv`` (exchange, symbol, interval), ``BTC-USD.csv``
    (finance sites' daily downloads), ``BTCUSDT.parquet``, ``btc_usdt_hourly.csv``; a
    symbol without a separator is split at one of the ``quotes``."""
    tokens = [t for t in re.split(r"[_\s.]+", Path(name).stem.upper()) if t]
    known = sorted({q.upper() for q in quotes}, key=len, reverse=True)
    found = set()
    for i, t in enumerate(tokens):
        parts = re.split(r"[-/]", t)
        if len(parts) == 2 and all(_asset(p) for p in parts):
            found.add("/".join(parts))
        elif i + 1 < len(tokens) and tokens[i + 1] in known and _asset(t) and t not in known:
            found.add(f"{t}/{tokens[i + 1]}")
        else:
            q = next((q for q in known if t.endswith(q) and _asset(t[: -len(q)])), None)
            if q is not None:
                found.add(f"{t[: -len(q)]}/{q}")
    return found.pop() if len(found) == 1 else None


class UnknownPair(FileSourceError):
    """A file whose pair neither the mapping, nor a column, nor its name says."""


def pair_of(raw: RawFile, mapped: str | None, quotes: Sequence[str]) -> tuple[str, str]:
    """The pair a file holds and where that was read: the explicit mapping, else its
    pair/symbol column (the two must agree when both are there), else its name
    (:func:`pair_from_name`)."""
    col = columns_of(raw.frame).get("pair")
    found = []
    if col is not None:
        found = sorted({symbol_pair(v, quotes, raw.name) for v in raw.frame[col].dropna().unique()})
    if mapped is not None:
        if found and found != [mapped]:
            raise FileSourceError(
                f"{raw.name}: data.files maps it to {mapped} but its '{col}' column says "
                f"{', '.join(found)}; fix the mapping or the file"
            )
        return mapped, "data.files"
    if col is None:
        if (named := pair_from_name(raw.name, quotes)) is not None:
            return named, "its file name"
        raise UnknownPair(f"{raw.name}: cannot tell which pair it holds (no 'pair' or 'symbol' "
                          "column, and its name says none)")  # fmt: skip
    if len(found) != 1:
        raise FileSourceError(f"{raw.name}: expected one pair in '{col}', found {found[:5]}")
    return found[0], f"its '{col}' column"


def mapping_hint(name: str, pair: str) -> str:
    """How to say which pair a file holds, with a mapping that would work."""
    return (
        f"name the file after its pair ({pair.replace('/', '-')}{Path(name).suffix}), or add "
        f"data.files: {{'{name}': '{pair}'}} under data: in a copy of configs/<gran>.yaml "
        "and pass CONFIG=<that copy>"
    )
