"""Evaluation stage: backtest, re-score the champion, decide."""

from steps.evaluation.evaluate import evaluate

__all__ = ["evaluate"]
