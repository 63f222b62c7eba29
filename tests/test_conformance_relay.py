"""The relay black-box part of the conformance suite: its fixture, the runner, seeded bugs.

The tests themselves (interop_tests/relay/) run against the reference relay in
tests/test_conformance.py; here: the fixture another relay is set up with, how
the runner refuses what it cannot run, and that each relay of
tests/broken_relay.py (the reference relay with one seeded bug) fails the
requirement its bug breaks.
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from broken_relay import BUGS
from ncb_relay import AnchorChain
from ncb_relay.cli import main
from ncb_relay.conformance.reference_relay import reference_relay
from ncb_relay.conformance.relay_fixture import (
    FIXTURE_FILE,
    PASSPHRASE,
    PROFILE,
    read_relay_fixture,
    write_relay_fixture,
)
from ncb_relay.conformance.runner import ConformanceReport, run_conformance
from ncb_relay.errors import UsageError
from ncb_relay.keystore import read_keystore
from ncb_relay.relay.config import load_config
from ncb_relay.relay.launch import app_settings, check_relay_key, load_trusted_directory
from ncb_relay.verified_directory import verify_directory

NOW = 1_800_000_000
BROKEN_RELAY = Path(__file__).resolve().parent / "broken_relay.py"


def test_a_fixture_lists_published_keys_and_sets_the_reference_relay_up(tmp_path: Path) -> None:
    first = write_relay_fixture(tmp_path / "one", now=NOW)
    second = write_relay_fixture(tmp_path / "two", now=NOW + 3600)
    assert len(first.bureaus) == 12
    assert [p.signing_seed for p in first.principals.values()] == [
        p.signing_seed for p in second.principals.values()
    ], "the keys are the same in every fixture: derived from a published constant"
    suspended = [p.id for p in first.principals.values() if not p.active]
    assert suspended == ["QS.ncb-suspended"]
    assert first.profile == PROFILE

    config = load_config(first.config_file)
    directory = load_trusted_directory(config, now=NOW)
    assert directory.serial == 1
    keyring = read_keystore(config.keystore, PASSPHRASE)
    check_relay_key(directory, config.relay_id, keyring.signing, NOW)  # the relay may start
    settings = app_settings(config)
    assert (settings.lease, settings.sender_max_messages) == (PROFILE["lease"], 20)
    assert settings.mailbox_max_messages == PROFILE["mailboxMaxMessages"]
    assert settings.rate_per_second == PROFILE["ratePerSecond"]

    anchors = AnchorChain.trust((first.folder / "anchor.signed").read_bytes())
    verified = verify_directory(first.directory_file.read_bytes(), anchors=anchors, now=NOW)
    for principal in first.principals.values():
        entry = verified.document.entry(principal.id)
        assert entry.current_state == ("active" if principal.active else "suspended")
        assert entry.signing_keys[-1].key == principal.identity.signer.public_key


def test_a_fixture_is_never_written_over_an_existing_one(tmp_path: Path) -> None:
    write_relay_fixture(tmp_path, now=NOW)
    with pytest.raises(UsageError, match="already holds"):
        write_relay_fixture(tmp_path, now=NOW)


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda d: d.pop("profile"), "profile"),
        (lambda d: d["profile"].update(lease=0), "positive integer"),
        (lambda d: d["principals"][0].update(signingSeed="00"), "signingSeed"),
        (lambda d: d["principals"][1].update(role="admin"), "role"),
        (lambda d: d.update(coordinator="QA.ncb-alpha"), "coordinator"),
        (lambda d: d.update(principals="none"), "not a conformance fixture"),
    ],
    ids=["no-profile", "bad-profile", "bad-seed", "bad-role", "bad-coordinator", "no-list"],
)
def test_a_damaged_fixture_file_is_a_usage_error(
    tmp_path: Path, edit: object, fragment: str
) -> None:
    write_relay_fixture(tmp_path, now=NOW)
    path = tmp_path / FIXTURE_FILE
    data = json.loads(path.read_text("utf-8"))
    assert callable(edit)
    edit(data)
    path.write_text(json.dumps(data), "utf-8")
    with pytest.raises(UsageError, match=fragment):
        read_relay_fixture(tmp_path)
    path.write_bytes(b"\xff not json")
    with pytest.raises(UsageError, match="not JSON"):
        read_relay_fixture(tmp_path)
    path.unlink()
    with pytest.raises(UsageError, match="cannot read"):
        read_relay_fixture(tmp_path)


def test_the_runner_needs_something_to_test_and_a_relay_its_fixture() -> None:
    with pytest.raises(UsageError, match="name an adapter"):
        run_conformance(None)
    with pytest.raises(UsageError, match="relay-fixture"):
        run_conformance(None, relay="http://127.0.0.1:9")


def test_write_fixture_prints_how_to_start_the_reference_relay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["conformance", "--write-fixture", str(tmp_path / "fx")]) == 0
    out = capsys.readouterr().out
    assert "ncb-relay serve --config" in out
    assert PASSPHRASE in out
    fixture = read_relay_fixture(tmp_path / "fx")
    issued = json.loads((tmp_path / "fx" / FIXTURE_FILE).read_text("utf-8"))["directoryIssued"]
    assert abs(issued - (int(time.time()) - 60)) < 120
    assert fixture.coordinator == "XP.gs-conformance"


@pytest.fixture(scope="module")
def relay_bug_reports() -> dict[str, ConformanceReport]:
    def run(name: str) -> ConformanceReport:
        command = [sys.executable, str(BROKEN_RELAY), "--bug", name]
        with reference_relay(command=command) as running:
            return run_conformance(
                None, relay=running.url, relay_fixture=running.fixture, files=[BUGS[name].only]
            )

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip(BUGS, pool.map(run, BUGS), strict=True))


def test_at_least_ten_relay_bugs_are_seeded() -> None:
    assert len(BUGS) >= 10
    assert len({bug.breaks for bug in BUGS.values()}) >= 9


@pytest.mark.parametrize("name", sorted(BUGS))
def test_each_seeded_relay_bug_is_caught(
    name: str, relay_bug_reports: dict[str, ConformanceReport]
) -> None:
    report = relay_bug_reports[name]
    assert not report.passed, f"{name} ({BUGS[name].what}) was not caught"
    assert BUGS[name].breaks in report.failed, (
        f"{name}: reported failed {report.failed}, not {BUGS[name].breaks}"
    )
