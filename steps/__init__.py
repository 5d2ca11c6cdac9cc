"""ZenML steps, grouped by stage: ``@step`` adapters only (types in, artifacts out, MLflow
logging). The logic is in ``cryptocast``, the infrastructure in ``infra``."""
