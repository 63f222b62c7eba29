"""The ``ncb-relay`` command, run as a user would run it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ncb_relay.cli import main


def test_demo_runs_every_check_and_reports_them(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "NCB Paris, not a recipient, cannot read it" in out
    assert out.strip().endswith("demo: 8 checks passed")


def test_demo_quiet_prints_only_the_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quiet"]) == 0
    assert capsys.readouterr().out == "demo: 8 checks passed\n"


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
