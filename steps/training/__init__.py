"""Training stage: fit and backtest one shard of pairs per step."""

from steps.training.fit import fit

__all__ = ["fit"]
