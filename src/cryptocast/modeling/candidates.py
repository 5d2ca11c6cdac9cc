"""The candidate registry: :data:`CANDIDATES` maps a ``kind`` (used in the YAML config,
``configs/<gran>.yaml``) to a builder of its Darts model and the space it models.

Each builder returns a :class:`Built`: the unfitted Darts model, the space of the close
price it models (``price``, ``log_price`` or ``log_return``; see
:mod:`cryptocast.modeling.forecasting`), whether it is a global model, and its
early-stopping and covariate settings. :class:`~cryptocast.modeling.forecasting.Forecaster`
builds, fits, predicts and saves them.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cryptocast import threads


@dataclass(frozen=True)
class Built:
    """What a builder makes: the unfitted Darts model, the space of the close price it models, and
    how it is fitted (global or per origin, early stopping, past covariates)."""

    model: Any  # darts ForecastingModel
    space: str
    global_model: bool  # predicts from any history (True) or refits per origin (False)
    validation: int = 0  # candles at the end of the fitting data kept for early stopping
    covariates: bool = False  # takes past covariates (see past_covariates)


def _naive(params: dict, horizon: int, seed: int) -> Built:
    from darts.models import NaiveSeasonal

    return Built(NaiveSeasonal(K=1), "price", False)


def _drift(params: dict, horizon: int, seed: int) -> Built:
    from darts.models import NaiveDrift

    return Built(NaiveDrift(), "log_price", False)


def _lightgbm(params: dict, horizon: int, seed: int) -> Built:
    from darts.models import LightGBMModel

    p = {
        "lags": 48,
        "output_chunk_length": horizon,
        "n_estimators": 200,
        "learning_rate": 0.05,
        "num_leaves": 15,
        "verbose": -1,
        "n_jobs": threads.current(),  # the step's thread budget (scale.threads)
    } | params
    return Built(LightGBMModel(random_state=seed, **p), "log_return", True)


def _lightgbm_global(params: dict, horizon: int, seed: int) -> Built:
    """One LightGBM model for all pairs of a granularity (Darts' global models take a list
    of series), each pair's returns standardised by its own mean and deviation, with the
    position in the day and week as future covariates (Darts computes these encoders from
    the time index, at fit and at predict time, so a request needs nothing more) and,
    with ``lags_past_covariates``, the past covariates of :func:`past_covariates`."""
    built = _lightgbm(
        {
            "lags_future_covariates": [0],
            "add_encoders": {"cyclic": {"future": ["hour", "dayofweek"]}},
        }
        | params,
        horizon,
        seed,
    )
    return Built(built.model, built.space, True, covariates="lags_past_covariates" in params)


def quiet_lightning() -> None:
    """Lightning announces GPUs, TPUs and tips at INFO on every fit and load, Darts its
    pooling sizes and dtype casts: keep logs readable (warnings still show)."""
    for name in ("pytorch_lightning", "lightning.pytorch", "lightning_fabric", "darts"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*pin_memory.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")


def _torch_kwargs(params: dict) -> dict:
    quiet_lightning()
    trainer = {
        "accelerator": "cpu",
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        "enable_checkpointing": False,
    }
    return {"pl_trainer_kwargs": trainer | params.pop("pl_trainer_kwargs", {})}


def _torch(model_class: str, defaults: dict) -> Callable[[dict, int, int], Built]:
    """Builder of a Darts torch network on standardised log returns (CPU, seeded).

    Its training budget: at most ``n_epochs`` epochs, and, with ``validation: N``, the
    last N candles of the fitting data are held out and training stops once their loss
    has not improved by ``min_delta`` for ``patience`` epochs (deterministic, unlike a
    wall-clock budget)."""

    def build(params: dict, horizon: int, seed: int) -> Built:
        import darts.models
        from pytorch_lightning.callbacks import EarlyStopping

        p = (
            {
                "input_chunk_length": 4 * horizon,
                "output_chunk_length": horizon,
                "n_epochs": 3,
                "batch_size": 256,
            }
            | defaults
            | dict(params)
        )
        validation = int(p.pop("validation", 0))
        stop = EarlyStopping(
            "val_loss",
            patience=int(p.pop("patience", 2)),
            min_delta=float(p.pop("min_delta", 1e-4)),
        )
        kwargs = _torch_kwargs(p)
        if validation:
            kwargs["pl_trainer_kwargs"]["callbacks"] = [stop]
        model = getattr(darts.models, model_class)(random_state=seed, **kwargs, **p)
        return Built(model, "log_return", True, validation)

    return build


CANDIDATES: dict[str, Callable[[dict, int, int], Built]] = {
    "naive": _naive,
    "drift": _drift,
    "lightgbm": _lightgbm,
    "lightgbm_global": _lightgbm_global,
    "nhits": _torch("NHiTSModel", {"num_blocks": 1, "layer_widths": 64}),
    "tide": _torch("TiDEModel", {"hidden_size": 64}),
}
# kinds that need torch to load and predict: served only when significantly better than
# the best cheaper candidate (cryptocast.delivery.decisions.prefer_cheaper)
TORCH_KINDS = frozenset({"nhits", "tide"})
# kinds fitted once on every pair of a run (Forecaster.fit_many), not pair by pair
MULTI_SERIES: frozenset[str] = frozenset({"lightgbm_global"})
