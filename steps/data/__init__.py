"""Data stage: load candles, validate the OHLCV contract."""

from steps.data.load import load
from steps.data.validate import validate

__all__ = ["load", "validate"]
