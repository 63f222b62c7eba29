"""The conformance suite (interop_tests/) passes the reference adapter and catches seeded bugs.

``ncb-relay conformance`` runs the whole suite against the reference adapter:
every test passes, the table and both reports are written.  Then the suite
runs against ``tests/broken_adapter.py`` once per seeded bug (stopping at the
first failure, in parallel): each bug must fail the run and the requirement
the bug breaks must be among those reported failed.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import sys
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from broken_adapter import BUGS
from ncb_relay.cli import main
from ncb_relay.conformance.adapter import Adapter, serve
from ncb_relay.conformance.requirements import Requirement, read_requirements
from ncb_relay.conformance.runner import ConformanceReport, run_conformance

ROOT = Path(__file__).resolve().parents[1]
PYTHON = shlex.quote(sys.executable)
REFERENCE = f"{PYTHON} -m ncb_relay.conformance.adapter"
JSON = dict[str, Any]
BROKEN = f"{PYTHON} {shlex.quote(str(ROOT / 'tests' / 'broken_adapter.py'))} --bug"


@dataclass
class ReferenceRun:
    status: int
    out: str
    report: JSON
    junit: Path


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory) -> ReferenceRun:
    folder = tmp_path_factory.mktemp("conformance")
    report, junit = folder / "report.json", folder / "junit.xml"
    out = io.StringIO()
    with redirect_stdout(out):
        status = main(
            [
                *("conformance", "--adapter", REFERENCE, "--relay", "reference"),
                *("--json", str(report), "--junit", str(junit)),
            ]
        )
    return ReferenceRun(status, out.getvalue(), json.loads(report.read_text("utf-8")), junit)


def test_the_reference_adapter_and_relay_pass_every_test(reference_run: ReferenceRun) -> None:
    assert reference_run.status == 0, reference_run.out
    assert "protocol.md: Opening" in reference_run.out
    assert "relay-api.md: Endpoints" in reference_run.out
    assert "reference relay on http://127.0.0.1:" in reference_run.out
    assert reference_run.out.rstrip().splitlines()[-1].startswith("PASS: ")
    doc = reference_run.report
    assert doc["verdict"] == "pass"
    assert doc["failedRequirements"] == []
    outcomes = {t["outcome"] for t in doc["tests"]}
    assert outcomes == {"passed"}, "no test may fail or be skipped for the reference"
    assert len(doc["tests"]) >= 300
    assert all(t["requirements"] for t in doc["tests"])
    status_of = {r["id"]: r["status"] for r in doc["requirements"]}
    for rid in ("CODEC-3", "OPEN-6", "OPEN-10", "DISC-1", "BIND-2", "SEAL-1", "AUTH-11"):
        assert status_of[rid] == "pass", rid
    relay_tests = [t for t in doc["tests"] if t["test"].startswith("interop_tests/relay/")]
    assert len(relay_tests) >= 150, "the relay black-box tests ran against the reference relay"
    for rid in ("API-1", "API-7", "API-9", "API-13", "API-22", "API-24", "API-29", "API-30"):
        assert status_of[rid] == "pass", rid
    cases = ET.parse(reference_run.junit).getroot().iter("testcase")
    properties = [{p.get("name"): p.get("value") for p in case.iter("property")} for case in cases]
    assert len(properties) == len(doc["tests"])
    assert all(p.get("requirements") for p in properties)


# Item 4 of issue #8: every MUST of spec/ is exercised by a conformance test (through the
# adapter or against the relay), but for this backlog.  A new MUST anywhere in spec/ fails
# this test until the suite covers it; a backlog entry that becomes
# covered fails it too, so the list only shrinks.  Each entry says why no adapter test checks
# it and names the project test that covers it in the reference (checked to exist below).
BACKLOG: dict[str, tuple[str, str]] = {  # id: (why not through the adapter, reference test)
    # not black-box: what an implementation writes, logs or imports
    "ERR-2": (
        "what error texts and logs say: the harness compares codes, `detail` is free text",
        "tests/test_errors.py::test_failing_opens_never_reveal_plaintext_or_keys",
    ),
    "KS-14": (
        "how a file is written on disk (0600, atomic rename, no overwrite)",
        "tests/test_keystore.py::test_a_failure_between_write_and_rename_leaves_the_old_file",
    ),
    "KS-15": (
        "symbolic links at a path on disk",
        "tests/test_keystore.py::test_symbolic_links_at_the_target_are_refused",
    ),
    "KS-17": (
        "which interface protocol code signs through",
        "tests/test_keystore.py::test_protocol_code_signs_only_through_the_signer_interface",
    ),
    "EXT-1": (
        "a registry's API for extension types, which is language-specific",
        "tests/test_message_registry.py::test_no_extension_can_shadow_a_built_in_body",
    ),
    "EXT-2": (
        "how an extension type is defined in the implementation's language",
        "tests/test_message_registry.py::test_a_registry_refuses_a_model_that_breaks_the_rules",
    ),
    "ROT-1": (
        "the coordinator's out-of-band check of a new principal",
        "tests/test_directory_lifecycle.py::test_adding_a_principal",
    ),
    # a party's state over time: a relay
    "AUTH-17": (
        "a relay's bound on nonces per principal: over the wire the same 429 as the rate limit "
        "that comes first (interop_tests/relay/test_limits.py says why)",
        "tests/test_relay_review.py::test_the_nonce_cache_caps_live_nonces_per_principal",
    ),
}
NOT_YET_EXERCISED = set(BACKLOG)


def test_every_must_is_exercised_or_in_the_backlog(reference_run: ReferenceRun) -> None:
    unexercised = {
        r["id"]
        for r in reference_run.report["requirements"]
        if r["level"] == "MUST" and r["status"] != "pass"
    }
    assert not unexercised - NOT_YET_EXERCISED, "a MUST no conformance test exercises"
    assert not NOT_YET_EXERCISED - unexercised, "covered now: remove them from the backlog"


@pytest.fixture(scope="module")
def bug_reports() -> dict[str, ConformanceReport]:
    def run(name: str) -> ConformanceReport:
        only = BUGS[name].only
        return run_conformance(f"{BROKEN} {name}", pytest_args=["-x"], files=[only] if only else [])

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 1)) as pool:
        return dict(zip(BUGS, pool.map(run, BUGS), strict=True))


def test_at_least_ten_bugs_are_seeded() -> None:
    assert len(BUGS) >= 10
    assert len({bug.breaks for bug in BUGS.values()}) >= 10


@pytest.mark.parametrize("name", sorted(BUGS))
def test_each_seeded_bug_is_caught(name: str, bug_reports: dict[str, ConformanceReport]) -> None:
    report = bug_reports[name]
    assert not report.passed, f"{name} ({BUGS[name].what}) was not caught"
    assert BUGS[name].breaks in report.failed, (
        f"{name}: reported failed {report.failed}, not {BUGS[name].breaks}"
    )
    assert f'[{BUGS[name].breaks}] "' in report.failures()  # the requirement's text is quoted


def test_a_caught_bug_fails_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["conformance", "--adapter", f"{BROKEN} skip-outer-signature"])
    out = capsys.readouterr().out
    assert status == 1
    assert "FAIL interop_tests/" in out
    assert '[OPEN-6] "A receiver MUST verify the outer signature' in out
    assert out.rstrip().splitlines()[-1].startswith("FAIL: ")


def _report(level: str, outcome: str, *, strict: bool) -> ConformanceReport:
    requirement = Requirement("X-1", "a rule", level, "spec.md: Section")
    tests = [{"test": "t", "requirements": ["X-1"], "outcome": outcome}]
    return ConformanceReport("adapter", strict, tests, {"X-1": requirement})


def test_a_failed_should_fails_only_in_strict_mode() -> None:
    assert _report("SHOULD", "failed", strict=False).passed
    assert not _report("SHOULD", "failed", strict=True).passed
    assert not _report("MUST", "failed", strict=False).passed
    skipped = _report("MUST", "skipped", strict=True)
    assert skipped.passed
    assert skipped.status == {"X-1": "n/a"}
    assert "spec.md: Section" in skipped.table()


def test_requirements_are_read_with_level_and_section() -> None:
    found = read_requirements(ROOT / "spec")
    assert found["ENV-3"].level == "MUST"
    assert found["ENV-3"].section == "protocol.md: The envelope"
    assert found["ENV-3"].text.startswith("`version` MUST be 1.")
    assert found["CONV-4"].level == "SHOULD"


def test_the_adapter_answers_every_line_and_refuses_what_it_cannot_serve() -> None:
    lines = [
        '{"op": "hello", "id": 7}',
        "not json",
        '{"op": "teleport"}',
        '{"op": "decode", "data": "c1"}',
        '{"op": "decode"}',
        "",
        '{"op": "encode", "value": {"type": "int", "value": "-33"}}',
    ]
    out = io.StringIO()
    serve(Adapter(), io.StringIO("\n".join(lines) + "\n"), out)
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert answers[0]["id"] == 7
    assert answers[0]["protocol"] == "NCBR/1"
    assert "seal" in answers[0]["ops"]
    assert [a.get("error") for a in answers[1:]] == [
        "bad-request",
        "unsupported-op",
        "malformed",
        "bad-request",
        None,
    ]
    assert answers[-1] == {"data": "d0df"}


@pytest.mark.parametrize("rid", sorted(BACKLOG))
def test_the_backlog_names_a_reference_test_that_exists(rid: str) -> None:
    reason, node = BACKLOG[rid]
    path, _, name = node.partition("::")
    source = (ROOT / path).read_text("utf-8")
    assert reason
    assert f"def {name}(" in source, f"{rid}: {node} does not exist"
    assert rid in source, f"{rid}: {path} does not name it"
