"""The MLflow pyfunc that serves a bundle over HTTP (``/invocations``)."""
