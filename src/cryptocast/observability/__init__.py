"""What operators watch: live accuracy and drift of the champion
(:mod:`~cryptocast.observability.monitoring`), the Prometheus metrics of the servers and
the front door (:mod:`~cryptocast.observability.telemetry`) and the exporter's text
(:mod:`~cryptocast.observability.exporter`).

May import: the kernel, ``cryptocast.data`` and ``cryptocast.modeling``.
"""
