"""Forecasters and how they are judged: the candidate registry
(:mod:`~cryptocast.modeling.candidates`), the Forecaster
(:mod:`~cryptocast.modeling.forecasting`), rolling-origin backtests
(:mod:`~cryptocast.modeling.backtest`), calibrated quantiles
(:mod:`~cryptocast.modeling.uncertainty`), metrics and Diebold-Mariano tests
(:mod:`~cryptocast.modeling.evaluation`, :mod:`~cryptocast.modeling.significance`), plots
and the accuracy report.

May import: the kernel and ``cryptocast.data``.
"""
