"""ZenML pipelines: composition only; the steps live in ``steps/``, the infrastructure
they run on in ``infra/``."""
