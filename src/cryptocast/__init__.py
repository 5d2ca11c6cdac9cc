"""cryptocast: crypto price forecasting with Darts, tracked in MLflow, orchestrated by ZenML.

The package is the pure core: it knows nothing of ZenML (``infra/``, ``steps/`` and
``pipelines/`` at the repository root adapt it). It is grouped by domain, in floors that
import only downwards (``tests/unit/test_layers.py`` keeps it so)::

    delivery/       decisions, provenance, registry, release, forecasts store
    serving/        bundle, pyfunc model, front door, client
    observability/  monitoring, drift, metrics
    modeling/       forecasters, backtests, intervals, significance, report
    data/           sources, file layouts, validation
    kernel          config, runconfig, contracts, errors, paths, locks, threads,
                    failpoints, net, schedule

See ``docs/architecture.md``.
"""

__version__ = "0.1.0"
