"""The conformance suite's configuration: the adapter under test and the verdict per test.

``--adapter CMD`` (or ``NCB_CONFORMANCE_ADAPTER``) names the command that speaks
harness.md; without it the reference adapter runs.  ``--relay URL`` and
``--relay-fixture DIR`` name the relay under test and the fixture it was set
up with (interop_tests/relay/); without them the relay tests skip.  Each test names the spec
requirements it checks with ``@pytest.mark.req(...)``; a failing test's report
quotes their text (h2spec style), the JUnit XML carries them as properties,
and ``--conformance-results FILE`` writes every test's outcome and
requirements as JSON for ``ncb-relay conformance``.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import sys
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from ncb_relay.conformance.requirements import Requirement, read_requirements

from .adapter_process import AdapterProcess

SPEC = Path(__file__).resolve().parent.parent / "spec"
REFERENCE = f"{shlex.quote(sys.executable)} -m ncb_relay.conformance.adapter"
REQUIREMENTS: dict[str, Requirement] = read_requirements(SPEC)

_results = pytest.StashKey[dict[str, dict[str, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "NCBR/1 conformance suite")
    group.addoption(
        "--adapter",
        default=os.environ.get("NCB_CONFORMANCE_ADAPTER", REFERENCE),
        help="the adapter command (harness.md), split like a shell would; default: reference",
    )
    group.addoption(
        "--conformance-results", default=None, help="write each test's outcome here (JSON)"
    )
    group.addoption(
        "--seed", type=int, default=None, help="seed of the randomized cases (default: random)"
    )
    group.addoption(
        "--relay",
        default=os.environ.get("NCB_CONFORMANCE_RELAY"),
        help="the URL of the relay under test (interop_tests/relay/); without it they skip",
    )
    group.addoption(
        "--relay-fixture",
        default=os.environ.get("NCB_CONFORMANCE_RELAY_FIXTURE"),
        help="the folder of the fixture the relay under test was set up with (conformance.json)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "req(*ids): the spec requirements this test checks")
    config.stash[_results] = {}


def requirement_ids(item: pytest.Item) -> list[str]:
    return [rid for mark in item.iter_markers("req") for rid in mark.args]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        ids = requirement_ids(item)
        unknown = [rid for rid in ids if rid not in REQUIREMENTS]
        if unknown:
            raise pytest.UsageError(f"{item.nodeid} names unknown requirements {unknown}")
        item.user_properties.append(("requirements", " ".join(ids)))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    results = item.config.stash[_results]
    ids = requirement_ids(item)
    entry = results.setdefault(
        item.nodeid, {"test": item.nodeid, "requirements": ids, "outcome": "passed"}
    )
    if report.failed:
        entry["outcome"] = "failed"
        message = call.excinfo.exconly() if call.excinfo else report.longreprtext
        entry["message"] = (message.strip().splitlines() or [""])[0][:500]
        quoted = "\n".join(REQUIREMENTS[rid].quote(400) for rid in ids)
        report.sections.append(("requirements checked by this test", quoted))
    elif report.skipped and entry["outcome"] == "passed":
        entry["outcome"] = "skipped"
        longrepr = report.longrepr
        entry["message"] = str(longrepr[2] if isinstance(longrepr, tuple) else longrepr)
    return report


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = session.config.getoption("--conformance-results")
    if target:
        results = list(session.config.stash[_results].values())
        Path(target).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")


def pytest_report_header(config: pytest.Config) -> str:
    relay = config.getoption("--relay")
    return f"conformance adapter: {config.getoption('--adapter')}; relay: {relay or 'none'}"


@pytest.fixture(scope="session")
def adapter(pytestconfig: pytest.Config) -> Iterator[AdapterProcess]:
    process = AdapterProcess(shlex.split(pytestconfig.getoption("--adapter")))
    try:
        yield process
    finally:
        process.close()


@pytest.fixture(scope="session")
def seed(pytestconfig: pytest.Config) -> int:
    chosen = pytestconfig.getoption("--seed")
    return chosen if chosen is not None else random.SystemRandom().randrange(2**32)
