"""Network facts the services check before they start."""

from __future__ import annotations

import socket


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on ``host:port`` (then nothing else can
    listen there)."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex((host, port)) == 0
