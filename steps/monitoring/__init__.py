"""Monitoring stage: live accuracy of the champion, drift since its training window, the
retrain decision, and the training run it triggers."""

from steps.monitoring.check_drift import check_drift
from steps.monitoring.decide_retrain import decide_retrain
from steps.monitoring.score_live import score_live
from steps.monitoring.split import split
from steps.monitoring.trigger_training import trigger_training

__all__ = ["check_drift", "decide_retrain", "score_live", "split", "trigger_training"]
