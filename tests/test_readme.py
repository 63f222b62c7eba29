"""The README's commands and example stay true."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.DOTALL)


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    install_and_demo, run_tests = (block.strip() for block in _blocks("sh")[:2])
    assert install_and_demo.endswith("ncb-relay demo")
    assert run_tests in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_python_examples_run(capsys: pytest.CaptureFixture[str]) -> None:
    embedding, core = _blocks("python")
    exec(compile(core, "README.md", "exec"), {})
    exec(compile(embedding, "README.md", "exec"), {})  # a relay on a loopback port, two bureaus
    assert capsys.readouterr().out.startswith("answered - The operator")
