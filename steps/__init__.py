"""ZenML steps: thin adapters around ``cryptocast``. Types in, artifacts out, MLflow logging."""

from steps.deploy import deploy
from steps.evaluate import evaluate
from steps.load import load
from steps.train import train
from steps.validate import validate

__all__ = ["deploy", "evaluate", "load", "train", "validate"]
