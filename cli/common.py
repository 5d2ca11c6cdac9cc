"""What the command groups share: options, settings, the stack, the granularity lock."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from cli.errors import Refused
from cryptocast.config import Settings
from cryptocast.paths import granularity_config
from cryptocast.runconfig import Overrides, RunConfig, load_run

if TYPE_CHECKING:
    from cryptocast.contracts import ReconcileRecord, ReleaseRecord

GRANULARITIES = ("hour", "day")

gran_option = click.option(
    "--gran", type=click.Choice(GRANULARITIES), default="hour", show_default=True
)


def data_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--gran``, ``--data``, ``--data-dir``, ``--pairs``: what a pipeline runs on."""
    options = (
        gran_option,
        click.option(
            "--data",
            "source",
            type=click.Choice(["auto", "binance", "files", "sample"]),
            default=None,
            help="Override data.source of the config.",
        ),
        click.option("--data-dir", default=None, help="Directory of CSV/Parquet files."),
        click.option("--pairs", default=None, help='Space-separated, e.g. "BTC/USDT ETH/USDT".'),
    )
    for option in reversed(options):
        command = option(command)
    return command


def data_overrides(
    source: str | None, data_dir: str | None, pairs: str | None, **more: Any
) -> Overrides:
    """The command line's :class:`~cryptocast.runconfig.Overrides` from the data options
    (and ``more`` of its fields): a ``--data-dir`` is made absolute (from the working
    directory) and implies ``--data files``."""
    if data_dir:
        data_dir = os.path.abspath(data_dir)  # not resolve(): a link loop is the loader's to name
        source = source or "files"
    return Overrides(
        source=source, data_dir=data_dir, pairs=pairs.split() if pairs else None, **more
    )


def load(gran: str, config: str | None = None, overrides: Overrides | None = None) -> RunConfig:
    """The run configuration of ``gran`` (``--config`` or configs/<gran>.yaml), read and
    validated once with ``overrides``."""
    return load_run(granularity_config(gran, config), overrides)


def settings(gran: str, config: str | None = None, overrides: Overrides | None = None) -> Settings:
    """The validated settings of ``gran`` (see :func:`load`)."""
    return load(gran, config, overrides).settings


def load_for_run(gran: str, config: str | None, overrides: Overrides) -> RunConfig:
    """:func:`load` for a pipeline run, checked before ZenML starts: a bad override or a
    ``DATA_DIR`` that is missing (or a file) is one line at once, not a failed step."""
    run = load(gran, config, overrides)
    data = run.settings.data
    if data.source == "files" and data.data_dir is not None:
        from cryptocast.data.files import check_directory

        check_directory(data.data_dir)
    return run


def use_stack() -> None:
    """Make sure the cryptocast stack is active and point mlflow at its stores."""
    from infra.stack import configure_mlflow, ensure_stack

    ensure_stack()
    configure_mlflow()


@contextmanager
def granularity_lock(cfg: Settings, what: str) -> Iterator[None]:
    """One run, deploy, promotion, rollback or serve per granularity at a time."""
    from cryptocast.locks import Busy, exclusive, lock_path

    try:
        with exclusive(lock_path(cfg.deploy.models_dir), f"{cfg.granularity} {what}"):
            yield
    except Busy as exc:
        raise Refused(str(exc)) from exc


json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print the record as JSON (for programs)."
)


def echo_record(record: ReleaseRecord | ReconcileRecord, model_name: str, as_json: bool) -> None:
    """A release's record: lines for a person, or (``--json``) JSON for a program."""
    if as_json:
        click.echo(json.dumps(record.model_dump(mode="json"), indent=2))
    else:
        click.echo("\n".join(record.lines(model_name)))
