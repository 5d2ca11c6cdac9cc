"""Reading a run configuration: the file read once, the command line's overrides applied
in one place, validated once into :class:`RunConfig` (the schema itself is
:mod:`cryptocast.config`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from cryptocast.config import Settings, Source
from cryptocast.errors import UserError


class ConfigError(UserError, ValueError):
    """A configuration (file or override) that is not valid; the message says where."""


def describe(exc: ValidationError) -> str:
    """pydantic's errors as one line each: ``where: what`` (no input dump, no URL)."""
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"])
        what = err["msg"].removeprefix("Value error, ")
        lines.append(f"{where}: {what}" if where else what)
    return "; ".join(lines)


class Overrides(BaseModel):
    """What the command line may change in a run's configuration (``DATA=``,
    ``DATA_DIR=``, ``PAIRS=``, ``UNTIL=``, ``PROMOTE_BACKFILL=1``, ``REQUIRE_LEARNED=1``),
    applied in one place: :meth:`apply`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Source | None = None
    data_dir: str | None = None
    pairs: list[str] | None = None
    until: str | None = None
    promote_backfill: bool = False
    require_learned: bool = False

    def apply(self, raw: dict[str, Any]) -> Settings:
        """Validate the ``parameters.config`` mapping ``raw`` with these overrides.

        ``source='binance'`` implies ``strict`` (no silent fallback to synthetic data);
        ``promote_backfill`` is a person's decision for this run and ``require_learned`` a
        quality gate (see :class:`Gates`)."""
        cfg = yaml.safe_load(yaml.safe_dump(raw))  # deep copy of plain data
        data = cfg.setdefault("data", {})
        if self.source:
            data["source"] = self.source
            if self.source == "binance":
                data["strict"] = True
        if self.data_dir:
            data["data_dir"] = self.data_dir
        if self.pairs:
            cfg["pairs"] = list(self.pairs)
        if self.until:
            data["end"] = self.until
        for gate in ("promote_backfill", "require_learned"):
            if getattr(self, gate):
                cfg.setdefault("gates", {})[gate] = True
        try:
            return Settings.model_validate(cfg)
        except ValidationError as exc:
            raise ConfigError(describe(exc)) from None

    def data_only(self) -> Overrides:
        """The data overrides alone (what a run triggered by monitoring inherits)."""
        return Overrides(source=self.source, data_dir=self.data_dir, pairs=self.pairs)


def apply_overrides(raw: dict[str, Any], **overrides: Any) -> Settings:
    """:meth:`Overrides.apply` of the keyword ``overrides`` (fields of :class:`Overrides`)."""
    return Overrides(**overrides).apply(raw)


def read_run_config(path: str | Path) -> dict[str, Any]:
    """Read a ZenML run configuration YAML (``configs/<gran>.yaml``): its ZenML options
    and, under ``parameters.config``, the settings of :class:`Settings`."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict) or "config" not in (data.get("parameters") or {}):
        raise ConfigError(f"{path}: expected a ZenML run config with parameters.config")
    return data


@dataclass(frozen=True)
class RunConfig:
    """One run's configuration, read from disk and validated once: the validated
    :class:`Settings`, the command line's :class:`Overrides`, and ZenML's run options
    (the file without its ``parameters``: caching, per-step options)."""

    path: Path
    settings: Settings
    overrides: Overrides
    options: dict[str, Any]


def load_run(path: str | Path, overrides: Overrides | None = None) -> RunConfig:
    """Read the run configuration at ``path`` and validate it with ``overrides``; a
    configuration error names the file."""
    overrides = overrides or Overrides()
    raw = read_run_config(path)
    try:
        settings = overrides.apply(raw["parameters"]["config"])
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
    options = {k: v for k, v in raw.items() if k != "parameters"}
    return RunConfig(Path(path), settings, overrides, options)


def load_settings(path: str | Path, **overrides: Any) -> Settings:
    """The validated settings of the run configuration at ``path`` after the keyword
    ``overrides`` (fields of :class:`Overrides`)."""
    return load_run(path, Overrides(**overrides)).settings
