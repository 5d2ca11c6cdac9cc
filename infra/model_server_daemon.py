"""The daemon of a model server (``infra.model_server.ModelServer``).

``python -m infra.model_server_daemon zenml.services.local.local_daemon_entrypoint
--config-file F --pid-file P [--log-file L]``: what ZenML's own entrypoint takes (its name
too, which ZenML looks for in a daemon's command line), without activating every installed
ZenML integration first.
A module of its own: run as ``__main__``, it must not define the service class, which
ZenML loads by its source path.
"""

from __future__ import annotations

import argparse
import os

from zenml.services import LocalDaemonService
from zenml.utils.daemon import daemonize

import infra  # noqa: F401  (ZenML's source root: the service class is loaded by its path)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="The daemon of a cryptocast model server.")
    ap.add_argument("zenml_entrypoint", help="the name ZenML knows its daemons by (a marker)")
    ap.add_argument("--config-file", required=True)
    ap.add_argument("--pid-file", required=True)
    ap.add_argument("--log-file")
    args = ap.parse_args(argv)

    @daemonize(log_file=args.log_file, pid_file=args.pid_file, working_directory=os.getcwd())
    def launch(config_file: str) -> None:
        with open(config_file) as f:
            service = LocalDaemonService.from_json(f.read())
        service.run()

    launch(args.config_file)


if __name__ == "__main__":
    main()
