"""Named points where a test can kill the process, to prove that a crash there leaves
nothing half-written. Inert unless ``CRYPTOCAST_FAILPOINT`` names the point."""

from __future__ import annotations

import os
import signal

ENV = "CRYPTOCAST_FAILPOINT"


def hit(name: str) -> None:
    """SIGKILL this process if ``$CRYPTOCAST_FAILPOINT == name`` (no cleanup runs)."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
