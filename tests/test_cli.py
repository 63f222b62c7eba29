"""The ``ncb-relay`` command, run as a user would run it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ncb_relay.cli import main


def test_demo_plays_the_case_through_a_relay_and_reports_each_step(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "[ 1/16] XP.relay-lyon: relay started" in out
    assert "MA.ncb-rabat -> XP.interpol-gs, KR.ncb-seoul: response with findings" in out
    assert "[16/16]" in out
    assert out.splitlines()[-1].startswith("demo: the SkyManga case played through relay ")


def test_demo_quiet_prints_only_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quiet"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("demo: the SkyManga case played through relay XP.relay-lyon: 16 steps")


def test_console_script_entry_point_is_installed() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ncb_relay.cli", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.startswith("ncb-relay ")


def test_unknown_command_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main(["fly"])
    assert exc.value.code == 2
