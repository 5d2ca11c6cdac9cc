"""Training stage: fit every candidate per pair."""

from steps.training.train import train

__all__ = ["train"]
