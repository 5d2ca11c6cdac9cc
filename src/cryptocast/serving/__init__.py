"""What users call: the served bundle (:mod:`~cryptocast.serving.bundle`), the MLflow
pyfunc that serves it over ``/invocations`` (:mod:`~cryptocast.serving.model`), the stable
front door (:mod:`~cryptocast.serving.frontdoor`) and the one HTTP client
(:mod:`~cryptocast.serving.client`).

May import: the kernel, ``data``, ``modeling`` and ``observability``.
"""
