"""`make schedule` / `make unschedule`: cron lines, idempotent install, clean removal.

The CLI tests run against a file-backed stand-in for the ``crontab`` command
(``$CRYPTOCAST_CRONTAB``), so that the developer's real crontab is never touched."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from cryptocast import schedule as cron
from tests.conftest import ROOT

FAKE_CRONTAB = """#!/bin/sh
f="$FAKE_CRONTAB_FILE"
case "$1" in
  -l) [ -f "$f" ] || { echo "no crontab for $(id -un)" >&2; exit 1; }; cat "$f" ;;
  -) cat > "$f" ;;
  *) echo "usage" >&2; exit 2 ;;
esac
"""


def test_cron_lines():
    lines = cron.cron_lines(
        Path("/src/my repo"),
        "hour",
        monitor="5 * * * *",
        retrain="20 0 * * *",
        make="make",
    )
    assert lines == [
        "5 * * * * cd '/src/my repo' && make monitor GRAN=hour "
        ">> logs/monitor-hour.log 2>&1 # cryptocast hour /src/my repo",
        "20 0 * * * cd '/src/my repo' && make train GRAN=hour "
        ">> logs/train-hour.log 2>&1 # cryptocast hour /src/my repo",
    ]
    with pytest.raises(ValueError, match="not a 5-field cron schedule"):
        cron.cron_lines(Path("/x"), "day", monitor="hourly", retrain="0 0 * * *")


def test_replace_and_remove_touch_only_our_lines():
    tag = cron.marker(Path("/x"), "hour")
    theirs = "MAILTO=me\n0 3 * * * backup.sh\n"
    once = cron.with_lines(theirs, tag, [f"1 * * * * a {tag}"])
    twice = cron.with_lines(once, tag, [f"2 * * * * b {tag}"])
    assert twice == theirs + f"2 * * * * b {tag}\n"
    other = cron.marker(Path("/x"), "day")
    both = cron.with_lines(twice, other, [f"3 * * * * c {other}"])
    assert cron.without(both, tag) == theirs + f"3 * * * * c {other}\n"


@pytest.fixture
def crontab(tmp_path, monkeypatch) -> Path:
    exe = tmp_path / "crontab"
    exe.write_text(FAKE_CRONTAB)
    exe.chmod(0o755)
    store = tmp_path / "crontab.txt"
    monkeypatch.setenv("CRYPTOCAST_CRONTAB", str(exe))
    monkeypatch.setenv("FAKE_CRONTAB_FILE", str(store))
    return store


def test_schedule_and_unschedule_cli(crontab):
    from cli import cli

    crontab.write_text("0 3 * * * backup.sh\n")
    runner = CliRunner()
    for _ in range(2):  # installing twice leaves one set of lines
        out = runner.invoke(cli, ["schedule", "--gran", "hour", "--data", "sample"])
        assert out.exit_code == 0, out.output
    text = crontab.read_text()
    assert text.startswith("0 3 * * * backup.sh\n")
    ours = text.splitlines()[1:]
    assert len(ours) == 2
    assert ours[0].startswith("5 * * * * cd ")
    assert "monitor GRAN=hour DATA=sample" in ours[0]
    assert "train GRAN=hour DATA=sample" in ours[1]
    assert str(ROOT) in ours[1]
    assert all(line in out.output for line in ours)  # prints exactly what it installed

    out = runner.invoke(cli, ["unschedule", "--gran", "hour"])
    assert out.exit_code == 0
    assert "removed:" in out.output
    assert crontab.read_text() == "0 3 * * * backup.sh\n"
    out = runner.invoke(cli, ["unschedule", "--gran", "hour"])
    assert "nothing to do" in out.output


def test_schedule_without_a_crontab_yet(crontab):
    from cli import cli

    out = CliRunner().invoke(cli, ["schedule", "--gran", "day"])
    assert out.exit_code == 0, out.output
    assert len(crontab.read_text().splitlines()) == 2


def test_a_data_dir_with_a_space_stays_one_value_in_the_cron_line(crontab, tmp_path):
    from cli import cli

    folder = tmp_path / "my candles"
    args = ["schedule", "--gran", "day", "--data-dir", str(folder), "--pairs", "BTC/USDT ETH/USDT"]
    out = CliRunner().invoke(cli, args)
    assert out.exit_code == 0, out.output
    line = crontab.read_text().splitlines()[0]
    command = line.split(" && ", 1)[1].split(" >> ")[0]
    words = shlex.split(command)
    assert f"DATA_DIR={folder}" in words
    assert "PAIRS=BTC/USDT ETH/USDT" in words
    assert "DATA=files" in words
