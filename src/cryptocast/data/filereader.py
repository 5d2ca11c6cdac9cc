"""Read one CSV or Parquet file's cells, with their line numbers, for
:mod:`cryptocast.data.files`.

The header row is found (not assumed to be the first line), the delimiter sniffed
(``, ; TAB |``), a UTF-8 byte-order mark ignored, every row checked for the header's
number of fields, and column names matched case-, space- and underscore-insensitively
through one alias table, :data:`ALIASES`. A file that cannot be read at all is
:class:`Unreadable` (skipped by the directory scan); a problem in a readable file is a
:class:`FileSourceError` naming the file, the line and what was expected.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cryptocast.errors import UserError

SEPARATORS = (",", ";", "\t", "|")
HEADER_SCAN = 20  # lines searched for the header row
NULLS = ["NULL", "null", "NaN", "nan", "", "None"]
# canonical column -> accepted names, normalised by column_key, in order of preference
ALIASES: dict[str, tuple[str, ...]] = {
    "timestamp": ("unix", "unix timestamp", "timestamp", "open time", "time", "datetime", "date"),
    "pair": ("pair", "symbol", "ticker", "market", "instrument"),
    "open": ("open",),
    "high": ("high",),
    "low": ("low",),
    "close": ("close",),
    "volume": ("volume", "vol", "base volume", "volume base"),
}


class FileSourceError(UserError, ValueError):
    """The directory cannot give the requested pairs; the message says what to do."""


class Unreadable(FileSourceError):
    """A file that cannot be read at all (so whose pair is unknown): skipped, and named if
    a requested pair is then missing."""


@dataclass(frozen=True)
class RawFile:
    """One file's cells as text (CSV) or as stored (Parquet), with their line numbers."""

    name: str
    frame: pd.DataFrame
    lines: np.ndarray  # the file line (CSV, 1-based) or row (Parquet) of each frame row
    unit: str  # "line" or "row"

    def where(self, position: int) -> str:
        """Where the frame row at ``position`` came from, for an error message: ``name, line N``
        (CSV) or ``name, row N`` (Parquet)."""
        return f"{self.name}, {self.unit} {int(self.lines[position])}"


def column_key(name: object) -> str:
    """A column name as the alias table compares it: lower case, spaces, ``_`` and ``-``
    as one space (``Volume_BTC`` and ``volume btc`` are one column)."""
    return re.sub(r"[\s_\-]+", " ", str(name).strip().strip('"').lower()).strip()


def columns_of(frame: pd.DataFrame) -> dict[str, str]:
    """canonical column -> the frame's column, through :data:`ALIASES`."""
    by_norm = {}
    for col in frame.columns:
        by_norm.setdefault(column_key(col), col)
    found = {}
    for canonical, names in ALIASES.items():
        for n in names:
            if n in by_norm:
                found[canonical] = by_norm[n]
                break
    return found


def _header(lines: list[str], name: str) -> tuple[int, str]:
    """(index, delimiter) of the header row: the first line naming a time column and
    ``close``."""
    for i, line in enumerate(lines[:HEADER_SCAN]):
        for sep in SEPARATORS:
            fields = {column_key(f) for f in line.split(sep)}
            if "close" in fields and fields & set(ALIASES["timestamp"]):
                return i, sep
    first = lines[0][:80] if lines else ""
    raise Unreadable(
        f"{name}: no header row with a time column and open/high/low/close in its first "
        f"{HEADER_SCAN} lines (line 1 reads {first!r}); see the file layouts in docs/data.md"
    )


def _fields(line: str, sep: str) -> int:
    if '"' in line:
        return len(next(csv.reader([line], delimiter=sep)))
    return line.count(sep) + 1


def _check_fields(lines: list[str], at: int, sep: str, name: str, *, cut: bool) -> None:
    """Every non-blank row has the header's number of fields: a file cut short ends in
    the middle of a row, and a row with fields missing or extra is not read as something
    else."""
    want = _fields(lines[at], sep)
    last = max((i for i in range(at + 1, len(lines)) if lines[i].strip()), default=None)
    for i in range(at + 1, len(lines)):
        if not lines[i].strip() or (n := _fields(lines[i], sep)) == want:
            continue
        if i == last and cut and n < want:
            raise FileSourceError(
                f"{name} ends in the middle of line {i + 1} ({n} of {want} fields, no line "
                "end): the file was cut short; download it again, or delete that line to use "
                "the rows before it"
            )
        raise FileSourceError(
            f"{name}, line {i + 1}: {n} fields where the header (line {at + 1}) has {want}; "
            "fix or remove the row"
        )


def read_csv(path: Path, name: str) -> RawFile:
    """A CSV file's cells as text, with the header row found and every row checked for the header's
    number of fields. Raises :class:`Unreadable` for an empty, non-UTF-8 or headerless file,
    :class:`FileSourceError` for a row cut short or with fields missing."""
    data = _read_bytes(path, name)
    if not data.strip():
        raise Unreadable(f"{name}: empty file")
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not part of the first line
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise Unreadable(
            f"{name}, line {line}: byte 0x{data[exc.start]:02x} is not UTF-8 text; "
            "save the file as UTF-8"
        ) from None
    lines = text.splitlines()
    at, sep = _header(lines, name)
    _check_fields(lines, at, sep, name, cut=not text.endswith(("\n", "\r")))
    frame = pd.read_csv(
        io.StringIO(text),
        skiprows=at,
        sep=sep,
        dtype=str,
        keep_default_na=False,
        skip_blank_lines=False,
    )
    for col in frame.columns:
        text = frame[col].str.strip()
        frame[col] = text.where(~text.isin(NULLS) & text.notna(), None)
    numbers = np.arange(len(frame)) + at + 2  # header on line at + 1
    keep = frame.notna().any(axis=1).to_numpy()
    if not keep.any():
        raise Unreadable(f"{name}: a header (line {at + 1}) and no rows")
    return RawFile(name, frame[keep].reset_index(drop=True), numbers[keep], "line")


def read_parquet(path: Path, name: str) -> RawFile:
    """A Parquet file's rows as stored (a DatetimeIndex becomes a ``timestamp`` column). Raises
    :class:`Unreadable` for a damaged or empty file."""
    data = _read_bytes(path, name)
    try:
        frame = pd.read_parquet(io.BytesIO(data))
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise Unreadable(f"{name}: not a readable Parquet file ({str(exc)[:120]})") from None
    if isinstance(frame.index, pd.DatetimeIndex):
        frame = frame.rename_axis(frame.index.name or "timestamp").reset_index()
    if frame.empty:
        raise Unreadable(f"{name}: no rows")
    return RawFile(name, frame.reset_index(drop=True), np.arange(len(frame)) + 1, "row")


def _read_bytes(path: Path, name: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise Unreadable(f"{name}: cannot be read ({exc.strerror})") from None
