"""ZenML pipelines: composition only; the steps live in ``steps/``."""
