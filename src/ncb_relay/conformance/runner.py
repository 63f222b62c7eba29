"""``ncb-relay conformance``: run the suite against an adapter and give a verdict per requirement.

The suite is pytest code in the source tree's ``interop_tests/``; the runner
starts it in a child Python with ``--conformance-results``, then folds the
outcome of every test into the requirements each test names.  A requirement
*fails* if any test naming it failed, *passes* if at least one test naming it
passed and none failed, and is *not applicable* otherwise (no test of this
suite exercises it, or the adapter does not support the operation).  The
verdict fails on any failed MUST, and with ``--strict`` on any failed SHOULD.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .requirements import Requirement, read_requirements

__all__ = ["ConformanceReport", "register", "run_conformance"]

JSON = dict[str, Any]
SOURCE_TREE = Path(__file__).resolve().parents[3]
STATUSES = ("pass", "fail", "n/a")


@dataclass
class ConformanceReport:
    """The outcome of one run: every test, and every requirement's status."""

    adapter: str
    strict: bool
    tests: list[JSON]
    requirements: dict[str, Requirement]
    pytest_status: int = 0
    status: dict[str, str] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        for rid in self.requirements:
            self.status[rid] = "n/a"
        for test in self.tests:
            for rid in test["requirements"]:
                if test["outcome"] == "failed":
                    self.status[rid] = "fail"
                elif test["outcome"] == "passed" and self.status.get(rid) != "fail":
                    self.status[rid] = "pass"

    @property
    def failed(self) -> list[str]:
        levels = ("MUST", "SHOULD") if self.strict else ("MUST",)
        return [
            rid
            for rid, status in self.status.items()
            if status == "fail" and self.requirements[rid].level in levels
        ]

    @property
    def passed(self) -> bool:
        return self.pytest_status in (0, 1) and not self.failed and bool(self.tests)

    def sections(self) -> list[tuple[str, dict[str, dict[str, int]]]]:
        table: dict[str, dict[str, dict[str, int]]] = {}
        for rid, req in self.requirements.items():
            row = table.setdefault(
                req.section, {level: dict.fromkeys(STATUSES, 0) for level in ("MUST", "SHOULD")}
            )
            row[req.level][self.status[rid]] += 1
        return list(table.items())

    def table(self) -> str:
        rows: list[tuple[str, ...]] = [
            ("section", "MUST pass", "fail", "n/a", "SHOULD pass", "fail", "n/a")
        ]
        totals = [0] * 6
        for section, counts in self.sections():
            numbers = [counts[level][s] for level in ("MUST", "SHOULD") for s in STATUSES]
            totals = [a + b for a, b in zip(totals, numbers, strict=True)]
            rows.append((section, *map(str, numbers)))
        rows.append(("total", *map(str, totals)))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = []
        for number, row in enumerate(rows):
            cells = [row[0].ljust(widths[0])]
            cells += [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells))
            if number in (0, len(rows) - 2):
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def failures(self, limit: int = 20) -> str:
        """h2spec style: each failed test, the requirements it checks quoted, and why."""
        failed = [test for test in self.tests if test["outcome"] == "failed"]
        lines = []
        for test in failed[:limit]:
            lines.append(f"FAIL {test['test']}")
            lines.extend(
                f"     {self.requirements[rid].quote(100)}" for rid in test["requirements"]
            )
            lines.append(f"     -> {test.get('message', '')}")
        if len(failed) > limit:
            lines.append(f"... and {len(failed) - limit} more failed tests (see --json)")
        return "\n".join(lines)

    def summary(self) -> str:
        outcomes = [t["outcome"] for t in self.tests]
        counts = ", ".join(f"{outcomes.count(o)} {o}" for o in ("passed", "failed", "skipped"))
        verdict = "PASS" if self.passed else "FAIL"
        failed = f"; failed requirements: {' '.join(self.failed)}" if self.failed else ""
        return f"{verdict}: {len(outcomes)} tests ({counts}){failed}"

    def as_json(self) -> JSON:
        return {
            "adapter": self.adapter,
            "strict": self.strict,
            "verdict": "pass" if self.passed else "fail",
            "failedRequirements": self.failed,
            "sections": [{"section": section, **counts} for section, counts in self.sections()],
            "requirements": [
                {
                    "id": rid,
                    "level": req.level,
                    "section": req.section,
                    "status": self.status[rid],
                    "text": req.text,
                    "tests": [t["test"] for t in self.tests if rid in t["requirements"]],
                }
                for rid, req in self.requirements.items()
            ],
            "tests": self.tests,
        }


def run_conformance(
    adapter: str,
    *,
    suite: Path = SOURCE_TREE / "interop_tests",
    strict: bool = False,
    junit: Path | None = None,
    seed: int | None = None,
    pytest_args: Sequence[str] = (),
    echo: Callable[[str], None] | None = None,
    files: Sequence[str] = (),
) -> ConformanceReport:
    """Run the suite in ``suite`` (only ``files`` of it, if given) against ``adapter``."""
    if not (suite / "conftest.py").is_file():
        raise UsageError(f"no conformance suite in {suite} (pass --suite DIR)")
    with tempfile.TemporaryDirectory() as scratch:
        results = Path(scratch) / "results.json"
        targets = [str(suite / name) for name in files] or [str(suite)]
        command = [sys.executable, "-m", "pytest", *targets, "-q", "-p", "no:cacheprovider"]
        command += ["-o", "addopts=", "--adapter", adapter, "--conformance-results", str(results)]
        command += ["-p", "no:hypothesispytest", "-p", "no:anyio"]  # unused; slow to start
        if junit is not None:
            command.append(f"--junitxml={junit.resolve()}")  # the child runs in the tree
        if seed is not None:
            command += ["--seed", str(seed)]
        command += list(pytest_args)
        done = subprocess.run(  # noqa: S603 -- our own interpreter running the suite
            command, cwd=suite.parent, capture_output=True, text=True, check=False
        )
        if echo is not None:
            echo(done.stdout + done.stderr)
        if not results.is_file():
            raise UsageError(
                f"the suite did not run (pytest exit {done.returncode}): "
                + (done.stdout + done.stderr).strip()[-2000:]
            )
        tests: list[JSON] = json.loads(results.read_text(encoding="utf-8"))
    return ConformanceReport(
        adapter, strict, tests, read_requirements(suite.parent / "spec"), done.returncode
    )


def _conformance(args: argparse.Namespace) -> int:
    def out(text: str) -> None:
        sys.stdout.write(text)

    report = run_conformance(
        args.adapter,
        suite=args.suite,
        strict=args.strict,
        junit=args.junit,
        seed=args.seed,
        echo=out if args.verbose else None,
    )
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_json(), indent=1) + "\n", encoding="utf-8")
    failures = report.failures()
    print(f"NCBR/1 conformance of: {args.adapter}")
    print(report.table())
    if failures:
        print(failures)
    print(report.summary())
    return 0 if report.passed else 1


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "conformance",
        help="run the NCBR/1 conformance suite against an implementation's adapter",
        description=(
            "Run interop_tests/ (every published vector, randomized seal/open both ways, the "
            "accumulated test) against ADAPTER, a command speaking interop_tests/harness.md. "
            "Prints a table per spec section (MUST and SHOULD: pass, fail, not applicable) and "
            "each failed test with the requirements it checks; exits 1 on any failed MUST "
            "(--strict: or SHOULD)."
        ),
    )
    parser.add_argument(
        "--adapter",
        required=True,
        metavar="CMD",
        help=f"the adapter command; the reference one is '{sys.executable} -m "
        "ncb_relay.conformance.adapter'",
    )
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write JUnit XML here")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the JSON report here")
    parser.add_argument("--strict", action="store_true", help="a failed SHOULD fails too")
    parser.add_argument("--seed", type=int, help="seed of the randomized cases")
    parser.add_argument(
        "--suite",
        type=Path,
        default=SOURCE_TREE / "interop_tests",
        metavar="DIR",
        help="the suite's directory (default: interop_tests/ of this source tree)",
    )
    parser.add_argument("--verbose", action="store_true", help="show pytest's own output")
    parser.set_defaults(run=_conformance, command_name="conformance")
