"""Delivery stage: act on the decision (release a promoted version)."""

from steps.delivery.deploy import deploy

__all__ = ["deploy"]
