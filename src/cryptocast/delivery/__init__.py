"""How a model reaches users: the promotion decision (:mod:`~cryptocast.delivery.decisions`),
provenance (:mod:`~cryptocast.delivery.provenance`), the MLflow Model Registry
(:mod:`~cryptocast.delivery.registry`), the release state machine
(:mod:`~cryptocast.delivery.release`; its infrastructure adapter is
``infra.release_adapters``) and the forecasts store (:mod:`~cryptocast.delivery.store`).

May import: every other group of the core (it is the top floor).
"""
