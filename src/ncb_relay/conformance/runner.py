"""``ncb-relay conformance``: run the suite against an implementation, a verdict per requirement.

The suite is pytest code in the source tree's ``interop_tests/``: the adapter
tests (``--adapter CMD``) and the relay black-box tests in
``interop_tests/relay/`` (``--relay URL`` with the fixture the relay was set up
with, or ``--relay reference``: the reference relay started on a fresh
fixture).  The runner starts pytest in a child Python with
``--conformance-results``, then folds the outcome of every test into the
requirements each test names.  A requirement
*fails* if any test naming it failed, *passes* if at least one test naming it
passed and none failed, and is *not applicable* otherwise (no test of this
suite exercises it, or the adapter does not support the operation).  The
verdict fails on any failed MUST, and with ``--strict`` on any failed SHOULD.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .reference_relay import reference_relay
from .relay_fixture import PASSPHRASE, write_relay_fixture
from .requirements import Requirement, read_requirements

__all__ = ["REFERENCE_ADAPTER", "ConformanceReport", "register", "run_conformance"]

JSON = dict[str, Any]
SOURCE_TREE = Path(__file__).resolve().parents[3]
STATUSES = ("pass", "fail", "n/a")
REFERENCE_ADAPTER = f"{shlex.quote(sys.executable)} -m ncb_relay.conformance.adapter"


@dataclass
class ConformanceReport:
    """The outcome of one run: every test, and every requirement's status."""

    adapter: str | None
    strict: bool
    tests: list[JSON]
    requirements: dict[str, Requirement]
    pytest_status: int = 0
    relay: str | None = None
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
            "relay": self.relay,
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
    adapter: str | None,
    *,
    relay: str | None = None,
    relay_fixture: Path | None = None,
    suite: Path = SOURCE_TREE / "interop_tests",
    strict: bool = False,
    junit: Path | None = None,
    seed: int | None = None,
    pytest_args: Sequence[str] = (),
    echo: Callable[[str], None] | None = None,
    files: Sequence[str] = (),
) -> ConformanceReport:
    """Run the suite in ``suite`` (only ``files`` of it, if given).

    ``adapter`` runs the adapter tests, ``relay`` (with ``relay_fixture``, the
    folder of the fixture it was set up with) the relay tests; at least one.
    """
    if not (suite / "conftest.py").is_file():
        raise UsageError(f"no conformance suite in {suite} (pass --suite DIR)")
    if adapter is None and relay is None:
        raise UsageError("name an adapter (--adapter CMD), a relay (--relay URL), or both")
    if relay is not None and relay_fixture is None:
        raise UsageError("a relay under test needs the fixture it was set up with: --relay-fixture")
    with tempfile.TemporaryDirectory() as scratch:
        results = Path(scratch) / "results.json"
        if files:
            targets = [str(suite / name) for name in files]
        elif adapter is None:
            targets = [str(suite / "relay")]
        else:
            targets = [str(suite)]
        command = [sys.executable, "-m", "pytest", *targets, "-q", "-p", "no:cacheprovider"]
        command += ["-o", "addopts=", "--conformance-results", str(results)]
        command += ["--adapter", adapter or REFERENCE_ADAPTER]
        if relay is None:
            command += ["--ignore", str(suite / "relay")]
        else:
            assert relay_fixture is not None
            command += ["--relay", relay, "--relay-fixture", str(relay_fixture.resolve())]
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
        adapter,
        strict,
        tests,
        read_requirements(suite.parent / "spec"),
        done.returncode,
        relay=relay,
    )


def _print_report(report: ConformanceReport, args: argparse.Namespace) -> int:
    if args.json is not None:
        args.json.write_text(json.dumps(report.as_json(), indent=1) + "\n", encoding="utf-8")
    failures = report.failures()
    under_test = [f"adapter {report.adapter}"] if report.adapter else []
    under_test += [f"relay {report.relay}"] if report.relay else []
    print(f"NCBR/1 conformance of: {'; '.join(under_test)}")
    print(report.table())
    if failures:
        print(failures)
    print(report.summary())
    return 0 if report.passed else 1


def _conformance(args: argparse.Namespace) -> int:
    def out(text: str) -> None:
        sys.stdout.write(text)

    if args.write_fixture is not None:
        fixture = write_relay_fixture(args.write_fixture, now=int(time.time()))
        print(f"wrote the relay fixture in {fixture.folder}; start the reference relay on it with")
        start = f"ncb-relay serve --config {fixture.config_file}"
        print(f"  NCB_RELAY_PASSPHRASE='{PASSPHRASE}' {start}")
        return 0
    adapter = REFERENCE_ADAPTER if args.adapter == "reference" else args.adapter
    options: dict[str, Any] = {
        "suite": args.suite,
        "strict": args.strict,
        "junit": args.junit,
        "seed": args.seed,
        "echo": out if args.verbose else None,
    }
    if args.relay != "reference":
        fixture = args.relay_fixture
        report = run_conformance(adapter, relay=args.relay, relay_fixture=fixture, **options)
        return _print_report(report, args)
    with reference_relay() as running:
        print(f"reference relay on {running.url} (fixture in {running.fixture})", flush=True)
        report = run_conformance(
            adapter, relay=running.url, relay_fixture=running.fixture, **options
        )
    return _print_report(report, args)


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "conformance",
        help="run the NCBR/1 conformance suite against an implementation's adapter and/or relay",
        description=(
            "Run interop_tests/ against ADAPTER, a command speaking interop_tests/harness.md "
            "(every published vector, randomized seal/open both ways, the accumulated test), "
            "and/or against the relay at URL set up with the suite's fixture (authentication, "
            "limits, dedupe, mailbox isolation, long-poll, receipts and proofs, error bodies). "
            "Prints a table per spec section (MUST and SHOULD: pass, fail, not applicable) and "
            "each failed test with the requirements it checks; exits 1 on any failed MUST "
            "(--strict: or SHOULD). 'ncb-relay conformance --adapter reference --relay "
            "reference' checks the reference implementation."
        ),
    )
    parser.add_argument(
        "--adapter",
        metavar="CMD",
        help="the adapter command, or 'reference' for the reference adapter "
        f"('{sys.executable} -m ncb_relay.conformance.adapter')",
    )
    parser.add_argument(
        "--relay",
        metavar="URL",
        help="the relay under test (set up with --relay-fixture), or 'reference': the "
        "reference relay, started on a fresh fixture for the run",
    )
    parser.add_argument(
        "--relay-fixture",
        type=Path,
        metavar="DIR",
        help="the fixture the relay under test was set up with (from --write-fixture)",
    )
    parser.add_argument(
        "--write-fixture",
        type=Path,
        metavar="DIR",
        help="write a relay fixture (test directory, relay keys and profile) in DIR and exit",
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
