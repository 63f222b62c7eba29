"""Every requirement id in spec/ is named by at least one test.

A requirement is marked in the spec as ``**[ENV-3]**``; a test names it with
``@pytest.mark.req("ENV-3")``.  Both sides are read statically so that running a
subset of the tests cannot hide a gap.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"\*\*\[([A-Z]+-\d+)\]\*\*")


def spec_requirements() -> dict[str, str]:
    found: dict[str, str] = {}
    for path in sorted((ROOT / "spec").glob("*.md")):
        for match in MARKER.finditer(path.read_text(encoding="utf-8")):
            rid = match.group(1)
            assert rid not in found, f"{rid} is defined in both {found[rid]} and {path.name}"
            found[rid] = path.name
    return found


def named_by_tests() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "req"
            ):
                names.update(
                    arg.value
                    for arg in node.args
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
                )
    return names


def test_the_spec_defines_requirements() -> None:
    assert len(spec_requirements()) >= 40


def test_every_spec_requirement_is_named_by_a_test() -> None:
    missing = sorted(set(spec_requirements()) - named_by_tests())
    assert not missing, f"requirements no test names: {missing}"


def test_tests_name_only_requirements_the_spec_defines() -> None:
    unknown = sorted(named_by_tests() - set(spec_requirements()))
    assert not unknown, f"tests name requirements the spec lacks: {unknown}"
