"""cryptocast: crypto price forecasting with Darts, tracked in MLflow, orchestrated by ZenML.

The package is the pure core: it knows nothing of ZenML. ``pipelines/`` and ``steps/``
at the repository root adapt it.
"""

__version__ = "0.1.0"
