"""A model server: ZenML's MLflow deployment service, started by a lean daemon.

ZenML's daemon entrypoint (``zenml.services.local.local_daemon_entrypoint``) activates
every installed ZenML integration before it starts a service: PyTorch Lightning's
materializer imports torch and Lightning, LightGBM's its library, and so on, about 2 s of
a 5 s daemon start, whatever the model needs. :class:`ModelServer` is the same service
(same records, same MLflow scoring server, same lifecycle for ZenML's model deployer);
only its daemon starts through ``infra.model_server_daemon``, which imports what serving
needs and no more, and without a test run's coverage (``infra.server_environ``).
"""

from __future__ import annotations

from typing import ClassVar

from zenml.integrations.mlflow.services import MLFlowDeploymentService
from zenml.services.local import local_daemon_entrypoint

from infra import server_environ

ZENML_ENTRYPOINT = local_daemon_entrypoint.__name__


class ModelServer(MLFlowDeploymentService):
    """:class:`MLFlowDeploymentService` whose daemon is ``infra.model_server_daemon``."""

    DAEMON: ClassVar[str] = "infra.model_server_daemon"

    def _get_daemon_cmd(self) -> tuple[list[str], dict[str, str]]:
        command, _ = super()._get_daemon_cmd()  # writes the config file, names the files
        module = command.index("-m") + 1
        # ZenML recognises its daemons by its entrypoint's name among their arguments
        # (and warns on every status check otherwise): it stays there, as a marker
        command[module : module + 1] = [self.DAEMON, ZENML_ENTRYPOINT]
        return command, server_environ()
