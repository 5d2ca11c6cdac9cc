"""Dashboards: what the MLflow UI and the ZenML dashboard need (make mlflow-ui)."""

from __future__ import annotations

import click


@click.command("tracking-uri")
def tracking_uri() -> None:
    """Print the MLflow tracking URI of the active stack."""
    from infra.stack import tracking_uri as uri

    click.echo(uri())


COMMANDS = (tracking_uri,)
