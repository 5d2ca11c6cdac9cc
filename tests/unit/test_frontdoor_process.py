"""The front door as a process of this checkout (``infra.frontdoor``: start, a taken
port, a failed start, a killed front door started again) and its registry adapter
(``infra.frontdoor_server``)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cryptocast.runconfig import apply_overrides
from tests.conftest import raw_config


def test_a_front_door_that_cannot_start_quotes_this_start_only(tmp_path):
    """The error quotes the lines this start wrote, not an earlier start's (the log keeps
    every start)."""
    from infra.frontdoor import _start_failure

    raw = raw_config("hour")
    raw["service"].update(host="127.0.0.1", port=18080)
    cfg = apply_overrides(raw)
    log = tmp_path / "front.log"
    earlier = "ERROR:    an earlier start's last words\n"
    log.write_text(earlier + "INFO:     Started server process [7]\nboom: no model\n")
    said = _start_failure(cfg, 1, log, start=len(earlier))
    assert said.startswith("the front door on http://127.0.0.1:18080 exited at start (exit 1)")
    assert said.endswith("Started server process [7]\n  boom: no model")
    assert "earlier" not in said


def test_a_taken_port_is_named_before_anything_starts(tmp_path):
    import socket

    from infra import frontdoor

    raw = raw_config("hour")
    raw["deploy"]["models_dir"] = str(tmp_path / "hour_models")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        raw["service"].update(host="127.0.0.1", port=port)
        with pytest.raises(RuntimeError) as refused:
            frontdoor.ensure_running(apply_overrides(raw))
    assert str(refused.value) == (
        f"port {port} on 127.0.0.1 is in use by another program, so the front door cannot "
        f"listen on http://127.0.0.1:{port}: stop that program, or set service.port in "
        "configs/hour.yaml (the model server itself runs)"
    )
    assert not (tmp_path / ".hour_models.front.log").exists()  # no process was started


def test_predict_starts_again_a_front_door_that_was_not_stopped(tmp_path, monkeypatch):
    """`cryptocast predict` revives a front door whose pid record is there but whose
    process is gone; one that was stopped (no record) stays stopped."""
    from infra import frontdoor, supervisor

    raw = raw_config("hour")
    raw["deploy"]["models_dir"] = str(tmp_path / "hour_models")
    cfg = apply_overrides(raw)
    started = []
    monkeypatch.setattr(frontdoor, "ensure_running", lambda c: started.append(c) or {"pid": 1})
    assert frontdoor.revive(cfg) is None
    assert started == []
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    supervisor.write_record(frontdoor.state_file(cfg), gone.pid, url=frontdoor.url(cfg), token="t")
    assert frontdoor.revive(cfg) == {"pid": 1}
    assert started == [cfg]
