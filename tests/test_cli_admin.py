"""The administrators' commands (issue #4, item 5), run as operators would run them.

A module-scoped ceremony builds a 2-of-3 trust anchor from three root keys, a
directory with a coordinator and three bureaus signed by two root holders
separately and merged, rotates a bureau's keys, revokes another, rotates the
root keys and issues a version under the new anchor, accepting each version in
turn into a verifier's ``--accepted`` file.  The tests then check the results
and every refusal: damaged, truncated and wrongly signed input, rollback and
fork, keystore errors, files that must not be overwritten.

The commands run in-process through :func:`ncb_relay.cli.main`, and a few
through the installed ``ncb-relay`` console script.  Keystores use the
``interactive`` Argon2id profile (``--kdf-profile interactive``: 2 passes over
64 MiB, the lowest the default bounds accept), so the suite stays quick
without a test-only code path.  Times are fixed; nothing reads the clock.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ncb_relay import AnchorChain, SignedDocument, SigningKeyPair, load_directory
from ncb_relay.cli import _parser, main
from ncb_relay.keystore import read_keystore
from ncb_relay.signatures import DIRECTORY_KIND

PASS_ENV = "NCB_RELAY_TEST_PASSPHRASE"
WRONG_ENV = "NCB_RELAY_TEST_WRONG_PASSPHRASE"
PASSPHRASE = "correct horse battery staple"

T_ANCHOR1 = "2027-01-14T08:00:00Z"
T1 = "2027-01-15T08:00:00Z"  # directory 1; the principals' first keys
T2 = "2027-01-17T08:00:00Z"  # directory 2: Seoul rotates, Rabat is revoked
T_ANCHOR2 = "2027-01-18T08:00:00Z"  # the root keys are rotated
T3 = "2027-01-19T08:00:00Z"  # directory 3, under the new anchor
T3_LATER = "2027-01-19T09:00:00Z"
BUREAUS = {"KR.ncb-seoul": "NCB Seoul", "MA.ncb-rabat": "NCB Rabat", "FR.ncb-paris": "NCB Paris"}
COORDINATOR = "XP.interpol-gs"


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Ceremony:
    """The ceremony's files, and every output printed while it ran.

    A command is one string split as a shell would (:func:`shlex.split`); a word
    ``@name`` is the ceremony file ``name``, ``$S`` is the passphrase option and
    ``$K`` the low-cost Argon2id profile.  Paths elsewhere go in ``extra``.
    """

    dir: Path
    printed: list[str] = field(default_factory=list)

    def _word(self, word: str) -> list[str]:
        if word == "$S":
            return ["--passphrase-env", PASS_ENV]
        if word == "$K":
            return ["--kdf-profile", "interactive"]
        return [str(self.dir / word[1:]) if word.startswith("@") else word]

    def __call__(self, command: str, *extra: str | Path, expect: int = 0) -> Run:
        argv = [w for word in shlex.split(command) for w in self._word(word)]
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([*argv, *map(str, extra)])
        run = Run(code, out.getvalue(), err.getvalue())
        self.printed += [run.out, run.err]
        assert code == expect, run
        return run

    def __truediv__(self, name: str) -> Path:
        return self.dir / name

    def copy(self, name: str, into: Path) -> Path:
        return Path(shutil.copy(self / name, into / name))


def _sign_separately(c: Ceremony, draft: str, out: str, holders: str, anchors: str = "") -> None:
    """Each holder signs their own copy of the draft; the copies are merged into ``out``."""
    for holder in holders.split():
        shutil.copy(c / draft, c / f"{draft}.root{holder}")
        c(f"sign @{draft}.root{holder} --keystore @root{holder}.keys {anchors} $S")
    c(f"merge {' '.join(f'@{draft}.root{h}' for h in holders.split())} --out @{out}")


@pytest.fixture(scope="module")
def ceremony(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ceremony]:
    c = Ceremony(tmp_path_factory.mktemp("ceremony"))
    with pytest.MonkeyPatch.context() as env:
        env.setenv(PASS_ENV, PASSPHRASE)
        env.setenv(WRONG_ENV, "not the passphrase")
        # three root key holders; a 2-of-3 anchor signed by two of them separately
        for i in (1, 2, 3):
            c(
                f"root generate --keystore @root{i}.keys --name 'Root holder {i}' "
                f"--out @root{i}.json $S $K"
            )
        c(
            f"anchor create --root @root1.json --root @root2.json --root @root3.json "
            f"--threshold 2 --issued {T_ANCHOR1} --out @anchor1.draft"
        )
        _sign_separately(c, "anchor1.draft", "anchor1", "1 2")
        c("verify @anchor1")

        # the coordinator opens draft 1; the coordinator and three bureaus make their keys
        c(f"directory init --anchor @anchor1 --issued {T1} --out @d1.draft")
        for principal in (COORDINATOR, *BUREAUS):
            c(
                f"keys generate --keystore @{principal}.keys --principal {principal} "
                f"--not-before {T1} $S $K"
            )
            c(f"keys export --keystore @{principal}.keys --out @{principal}.json $S")
        c(
            f"directory add @d1.draft --identity @{COORDINATOR}.json "
            "--name 'INTERPOL General Secretariat' --role coordinator"
        )
        for principal, name in BUREAUS.items():
            c(f"directory add @d1.draft --identity @{principal}.json --name '{name}'")
        _sign_separately(c, "d1.draft", "d1", "1 3", "--anchor @anchor1")
        c(f"verify @d1 --anchor @anchor1 --accepted @accepted --now {T1}")

        # version 2: Seoul rotates its keys, Rabat is revoked
        c(f"directory next --from @d1 --anchor @anchor1 --issued {T2} --out @d2.draft")
        c(
            f"keys rotate --keystore @KR.ncb-seoul.keys --new-keystore @KR.ncb-seoul.2.keys "
            f"--not-before {T2} --out @KR.ncb-seoul.rotation.json $S"
        )
        c("directory rotate @d2.draft --identity @KR.ncb-seoul.rotation.json")
        c("directory revoke @d2.draft --principal MA.ncb-rabat")
        _sign_separately(c, "d2.draft", "d2", "2 3", "--anchor @anchor1")
        c(f"verify @d2 --anchor @anchor1 --accepted @accepted --now {T2}")

        # the root keys are rotated: three new holders; signed by 2 old and 2 new
        for i in (4, 5, 6):
            c(
                f"root generate --keystore @root{i}.keys --name 'Root holder {i}' "
                f"--out @root{i}.json $S $K"
            )
        c(
            f"anchor rotate --anchor @anchor1 --root @root4.json --root @root5.json "
            f"--root @root6.json --threshold 2 --issued {T_ANCHOR2} --out @anchor2.draft"
        )
        _sign_separately(c, "anchor2.draft", "anchor2", "1 2 4 6", "--anchor @anchor1")
        c("verify @anchor2 --anchor @anchor1")

        # version 3, under the new anchor
        c(f"directory next --from @d2 {ANCHORS} --issued {T3} --out @d3.draft")
        _sign_separately(c, "d3.draft", "d3", "4 5", ANCHORS)
        c(f"verify @d3 {ANCHORS} --accepted @accepted --now {T3_LATER}")
        yield c


ANCHORS = "--anchor @anchor1 --anchor @anchor2"


def _chain(c: Ceremony) -> AnchorChain:
    return AnchorChain.load([(c / "anchor1").read_bytes(), (c / "anchor2").read_bytes()])


def _one_clear_line(run: Run, *words: str) -> None:
    """Exit status 1 with one line on stderr, no traceback, naming the problem."""
    assert run.code == 1
    assert run.out == ""
    assert run.err.count("\n") == 1, run.err
    assert run.err.endswith("\n"), run.err
    assert "Traceback" not in run.err
    for word in words:
        assert word in run.err, run.err


# --- the ceremony -----------------------------------------------------------------------------


@pytest.mark.req("ANCHOR-3", "ANCHOR-4", "ROT-7", "DIR-8")
def test_ceremony_accepts_each_version_and_verifies_old_and_new(ceremony: Ceremony) -> None:
    c = ceremony
    assert (c / "accepted").read_bytes() == (c / "d3").read_bytes()
    run = c(f"audit @d1 @d2 @d3 {ANCHORS}")
    assert "history verified: versions 1 to 3" in run.out
    c(f"verify @d1 {ANCHORS} --now {T1}")  # the old version, checked without state
    c(f"verify @d3 {ANCHORS} --now {T3_LATER}")
    for name in ("anchor1", "d1", "d2", "d3"):  # two copies signed separately, merged
        assert len(SignedDocument.decode(DIRECTORY_KIND, (c / name).read_bytes()).signatures) == 2
    assert len(SignedDocument.decode(DIRECTORY_KIND, (c / "anchor2").read_bytes()).signatures) == 4
    assert len(_chain(c)) == 2


@pytest.mark.req("ROT-2", "ROT-5")
def test_rotation_and_revocation_are_in_the_new_version(ceremony: Ceremony) -> None:
    shown = json.loads(ceremony(f"show @d3 {ANCHORS} --json").out)
    entries = {e["id"]: e for e in shown["entries"]}
    assert set(entries) == {COORDINATOR, *BUREAUS}
    seoul = entries["KR.ncb-seoul"]
    assert [k["endorsed"] for k in seoul["signingKeys"]] == [False, True]
    assert len(seoul["encryptionKeys"]) == 2
    assert [s["state"] for s in entries["MA.ncb-rabat"]["status"]] == ["active", "revoked"]
    assert entries["FR.ncb-paris"]["role"] == "bureau"
    assert entries[COORDINATOR]["role"] == "coordinator"
    assert shown["anchorSerial"] == 2
    assert shown["serial"] == 3


def test_json_output_matches_the_library(ceremony: Ceremony) -> None:
    c = ceremony
    expected = load_directory((c / "d3").read_bytes(), anchors=_chain(c)).to_json()
    shown = json.loads(c(f"show @d3 {ANCHORS} --json").out)
    assert shown.pop("verified") is True
    assert shown == expected
    assert json.loads(c(f"verify @d3 {ANCHORS} --now {T3_LATER} --json").out) == expected
    history = json.loads(c(f"audit @d1 @d2 @d3 {ANCHORS} --json").out)
    assert [v["serial"] for v in history] == [1, 2, 3]
    assert history[-1] == expected
    draft = json.loads(c("show @d3.draft --json").out)
    assert draft["verified"] is False
    assert draft["signedBy"] == []
    assert draft["entries"] == expected["entries"]
    anchor = json.loads(c("show @anchor2 --anchor @anchor1 --json").out)
    assert anchor["serial"] == 2
    assert anchor["hash"] == _chain(c).current.hash.hex()


def test_human_output_shows_times_in_iso_8601(ceremony: Ceremony) -> None:
    out = ceremony(f"show @d3 {ANCHORS}").out
    assert "directory 3 (verified" in out
    assert f"issued       {T3}" in out
    assert "MA.ncb-rabat  bureau  'NCB Rabat'  REVOKED" in out
    anchor = ceremony("show @anchor2 --anchor @anchor1").out
    assert "trust anchor 2 (verified)" in anchor
    assert T_ANCHOR2 in anchor


@pytest.mark.req("KS-14")
def test_keystores_are_private_and_hold_what_was_generated(ceremony: Ceremony) -> None:
    c = ceremony
    keystores = sorted(c.dir.glob("*.keys"))
    assert len(keystores) == 6 + 4 + 1
    for path in keystores:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    seoul = read_keystore(c / "KR.ncb-seoul.2.keys", PASSPHRASE)
    assert seoul.principal == "KR.ncb-seoul"
    assert len(seoul.encryption_keys) == 2
    assert json.loads(c("keys show --keystore @root1.keys --json $S").out)["root"] is True


def test_secrets_are_never_printed(ceremony: Ceremony) -> None:
    c = ceremony
    printed = "\n".join(c.printed)
    assert PASSPHRASE not in printed
    for path in c.dir.glob("*.keys"):
        keyring = read_keystore(path, PASSPHRASE)
        assert keyring.signing.seed.hex() not in printed
        for held in keyring.encryption_keys:
            assert held.key_pair.secret.hex() not in printed


# --- refusals that leave the accepted file alone --------------------------------------------


@pytest.fixture
def verifier(ceremony: Ceremony, tmp_path: Path) -> Path:
    """A copy of the verifier's accepted file (version 3), for tests that try to change it."""
    return ceremony.copy("accepted", tmp_path)


@pytest.mark.req("DIR-12")
def test_a_rollback_is_refused(ceremony: Ceremony, verifier: Path) -> None:
    run = ceremony(f"verify @d1 {ANCHORS} --now {T3_LATER} --accepted", verifier, expect=1)
    _one_clear_line(run, "older than version 3", "(rollback)")
    assert verifier.read_bytes() == (ceremony / "d3").read_bytes()


@pytest.mark.req("DIR-12")
def test_a_fork_is_refused(ceremony: Ceremony, verifier: Path, tmp_path: Path) -> None:
    c = ceremony
    other = tmp_path / "other.draft"
    c(f"directory next --from @d2 {ANCHORS} --issued 2027-01-19T10:00:00Z --out", other)
    for holder in (5, 6):
        c(f"sign --keystore @root{holder}.keys $S", other)
    run = c(f"verify {ANCHORS} --now {T3_LATER} --accepted", verifier, other, expect=1)
    _one_clear_line(run, "(fork)")
    assert verifier.read_bytes() == (c / "d3").read_bytes()


def _flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1 :]


def _signed_by_stranger(c: Ceremony) -> bytes:
    signed = SignedDocument.decode(DIRECTORY_KIND, (c / "d3").read_bytes())
    return signed.sign(SigningKeyPair(b"\x07" * 32)).encode()


DAMAGED: dict[str, tuple[Callable[[Ceremony], bytes], str]] = {
    "truncated": (lambda c: (c / "d3").read_bytes()[:-40], "malformed"),
    "empty": (lambda c: b"", "malformed"),
    "a JSON file": (lambda c: (c / "root1.json").read_bytes(), "malformed"),
    "flipped signature bit": (lambda c: _flip((c / "d3").read_bytes(), -5), "bad-signature"),
    "flipped document bit": (lambda c: _flip((c / "d3").read_bytes(), 200), "bad-signature"),
    "one signature short": (lambda c: (c / "d3.draft.root4").read_bytes(), "below-threshold"),
    "signed by a stranger too": (_signed_by_stranger, "unknown-key"),
}


@pytest.mark.req("DIR-8", "DIR-12")
@pytest.mark.parametrize("case", list(DAMAGED))
def test_damaged_or_wrongly_signed_input_is_refused(
    ceremony: Ceremony, verifier: Path, tmp_path: Path, case: str
) -> None:
    make, code = DAMAGED[case]
    incoming = tmp_path / "incoming"
    incoming.write_bytes(make(ceremony))
    run = ceremony(f"verify {ANCHORS} --now {T3_LATER} --accepted", verifier, incoming, expect=1)
    _one_clear_line(run, f"ncb-relay verify: {incoming}: ", f"({code})")
    assert verifier.read_bytes() == (ceremony / "d3").read_bytes()


def test_a_damaged_accepted_file_is_reported_and_kept(ceremony: Ceremony, verifier: Path) -> None:
    verifier.write_bytes(verifier.read_bytes()[:-1])
    before = verifier.read_bytes()
    run = ceremony(f"verify @d3 {ANCHORS} --now {T3_LATER} --accepted", verifier, expect=1)
    _one_clear_line(run, f"ncb-relay verify: {verifier}: ", "(malformed)")
    assert verifier.read_bytes() == before


@pytest.mark.req("ANCHOR-6")
def test_old_root_keys_cannot_sign_under_the_new_anchor(ceremony: Ceremony, tmp_path: Path) -> None:
    c = ceremony
    draft = c.copy("d3.draft", tmp_path)
    run = c(f"sign --keystore @root1.keys {ANCHORS} $S", draft, expect=1)
    _one_clear_line(run, "is not one that may sign this")
    c("sign --keystore @root1.keys $S", draft)  # not checked without --anchor
    c("sign --keystore @root2.keys $S", draft)
    _one_clear_line(c(f"verify {ANCHORS} --now {T3_LATER}", draft, expect=1), "(unknown-key)")


@pytest.mark.req("DIR-6")
def test_a_gap_needs_the_intermediate_versions(ceremony: Ceremony, tmp_path: Path) -> None:
    c = ceremony
    accepted = tmp_path / "accepted"
    shutil.copy(c / "d1", accepted)
    run = c(f"verify @d3 {ANCHORS} --now {T3_LATER} --accepted", accepted, expect=1)
    _one_clear_line(run, "(broken-chain)")
    assert accepted.read_bytes() == (c / "d1").read_bytes()
    c(f"verify @d3 {ANCHORS} --now {T3_LATER} --intermediate @d2 --accepted", accepted)
    assert accepted.read_bytes() == (c / "d3").read_bytes()


@pytest.mark.req("DIR-10")
def test_expiry_has_a_grace_period(ceremony: Ceremony) -> None:
    run = ceremony(f"verify @d3 {ANCHORS} --now 2027-02-03T08:00:00Z")
    assert "warning: directory 3 expired at 2027-02-02T08:00:00Z" in run.err
    run = ceremony(f"verify @d3 {ANCHORS} --now 2027-02-10T08:00:00Z", expect=1)
    _one_clear_line(run, "(directory-expired)")


@pytest.mark.req("ANCHOR-3")
def test_the_first_anchor_is_checked_against_its_fingerprint(ceremony: Ceremony) -> None:
    fingerprint = _chain(ceremony).fingerprint.hex()
    ceremony(f"verify @d3 {ANCHORS} --fingerprint {fingerprint} --now {T3_LATER}")
    run = ceremony(f"verify @anchor1 --fingerprint {'00' * 32}", expect=1)
    _one_clear_line(run, "do not trust it")


# --- keystores ----------------------------------------------------------------------------


@pytest.mark.req("KS-11")
def test_a_wrong_passphrase_or_damaged_keystore_is_one_clear_line(
    ceremony: Ceremony, tmp_path: Path
) -> None:
    c = ceremony
    run = c(f"keys show --keystore @FR.ncb-paris.keys --passphrase-env {WRONG_ENV}", expect=1)
    _one_clear_line(run, "(keystore-locked)")
    assert "not the passphrase" not in run.err
    damaged = tmp_path / "paris.keys"
    damaged.write_bytes((c / "FR.ncb-paris.keys").read_bytes()[:100])
    _one_clear_line(
        c("keys show $S --keystore", damaged, expect=1), f"{damaged}: ", "(keystore-corrupt)"
    )
    run = c("keys show --keystore @FR.ncb-paris.keys --passphrase-env NCB_UNSET", expect=1)
    _one_clear_line(run, "NCB_UNSET")


@pytest.mark.req("KS-12", "KS-13")
def test_prune_removes_only_keys_past_their_retention(ceremony: Ceremony, tmp_path: Path) -> None:
    c = ceremony
    keystore = c.copy("KR.ncb-seoul.2.keys", tmp_path)
    first, second = read_keystore(keystore, PASSPHRASE).encryption_keys
    run = c("keys prune --now 2027-01-20T08:00:00Z $S --keystore", keystore)
    assert "no encryption key is past its retention" in run.out
    run = c("keys prune --now 2027-02-24T08:00:00Z $S --keystore", keystore)
    assert first.key_id.hex() in run.out
    after = read_keystore(keystore, PASSPHRASE)
    assert [k.key_id for k in after.encryption_keys] == [second.key_id]
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    shown = json.loads(c("keys show --json $S --keystore", keystore).out)
    assert [k["keyId"] for k in shown["encryptionKeys"]] == [second.key_id.hex()]


def test_keystores_are_never_overwritten(ceremony: Ceremony) -> None:
    c = ceremony
    before = (c / "root1.keys").read_bytes()
    run = c("root generate --keystore @root1.keys --name Again --out @again.json $S $K", expect=1)
    _one_clear_line(run, "never overwritten")
    assert (c / "root1.keys").read_bytes() == before
    assert not (c / "again.json").exists()


def test_root_and_principal_keystores_are_not_confused(ceremony: Ceremony, tmp_path: Path) -> None:
    c = ceremony
    run = c("sign --keystore @FR.ncb-paris.keys $S", c.copy("d3.draft", tmp_path), expect=1)
    _one_clear_line(run, "not a root key")
    run = c("keys export --keystore @root1.keys $S --out", tmp_path / "x.json", expect=1)
    _one_clear_line(run, "root key, not a principal's keys")


def test_the_passphrase_is_asked_for_when_no_variable_is_named(
    ceremony: Ceremony, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers: list[str] = []
    prompts: list[str] = []

    def ask(prompt: str = "") -> str:
        prompts.append(prompt)
        if not answers:
            raise EOFError
        return answers.pop(0)

    monkeypatch.setattr("ncb_relay.admin_keystores.getpass.getpass", ask)
    keystore = tmp_path / "JP.ncb-tokyo.keys"
    answers[:] = ["one passphrase", "another"]
    run = ceremony("keys generate --principal JP.ncb-tokyo $K --keystore", keystore, expect=1)
    _one_clear_line(run, "the two passphrases differ")
    assert not keystore.exists()
    answers[:] = ["typed", "typed"]
    ceremony("keys generate --principal JP.ncb-tokyo $K --keystore", keystore)
    assert prompts[-1].startswith("Repeat the passphrase")
    answers[:] = ["typed"]
    out = ceremony("keys show --now 2030-01-01T00:00:00Z --keystore", keystore).out
    assert "keys of JP.ncb-tokyo" in out
    assert "past its retention" in out
    run = ceremony("keys show --keystore", keystore, expect=1)  # end of input, no passphrase
    _one_clear_line(run, "no passphrase was entered")
    assert "typed" not in "\n".join(ceremony.printed)


def test_a_root_key_can_be_exported_again(ceremony: Ceremony, tmp_path: Path) -> None:
    again = tmp_path / "root1.json"
    ceremony("root export --keystore @root1.keys --name 'Root holder 1' $S --out", again)
    assert json.loads(again.read_text()) == json.loads((ceremony / "root1.json").read_text())
    out = ceremony("keys show --keystore @root1.keys $S").out
    assert out.startswith("coordinator root key")


@pytest.mark.req("ROT-4", "ROT-8")
def test_a_new_encryption_key_is_published_and_accepted(
    ceremony: Ceremony, verifier: Path, tmp_path: Path
) -> None:
    c = ceremony
    t4 = "2027-01-20T08:00:00Z"
    keystore = c.copy("FR.ncb-paris.keys", tmp_path)
    identity, draft = tmp_path / "paris.json", tmp_path / "d4.draft"
    c(f"directory next --from @d3 {ANCHORS} --issued {t4} --out", draft)
    c(f"keys rotate --encryption-only --not-before {t4} $S --keystore", keystore, "--out", identity)
    assert len(read_keystore(keystore, PASSPHRASE).encryption_keys) == 2
    run = c("directory rotate --identity", identity, draft)
    assert "FR.ncb-paris: added encryption key" in run.out
    for holder in (5, 6):
        c(f"sign {ANCHORS} --keystore @root{holder}.keys $S", draft)
    run = c(f"verify {ANCHORS} --now {t4} --accepted", verifier, draft)
    assert "accepted into" in run.out
    assert "(was version 3)" in run.out
    shown = json.loads(c(f"show --json {ANCHORS}", verifier).out)
    paris = next(e for e in shown["entries"] if e["id"] == "FR.ncb-paris")
    assert len(paris["encryptionKeys"]) == 2


@pytest.mark.req("DIR-7")
def test_the_next_version_drops_keys_past_their_retention(
    ceremony: Ceremony, tmp_path: Path
) -> None:
    c = ceremony
    later = f"directory next --from @d3 {ANCHORS} --issued 2027-03-01T08:00:00Z"
    run = c(f"{later} --out", tmp_path / "pruned.draft")
    assert run.out.count("retired encryption key") == 5  # every first-generation key
    run = c(f"{later} --keep-retired-keys --out", tmp_path / "kept.draft")
    assert "retired encryption key" not in run.out


def test_an_anchor_is_shown_unverified_without_its_chain(ceremony: Ceremony) -> None:
    out = ceremony("show @anchor1.draft").out
    assert "trust anchor 1 (NOT VERIFIED" in out
    assert "signed by    0 signatures" in out
    run = ceremony("verify @anchor1 --anchor @anchor1 --anchor @anchor2")
    assert run.out.startswith("trust anchor 1 verified")


# --- drafts --------------------------------------------------------------------------------


def test_outputs_are_replaced_only_with_force(ceremony: Ceremony, tmp_path: Path) -> None:
    c = ceremony
    draft = c.copy("d3.draft", tmp_path)
    before = draft.read_bytes()
    init = f"directory init --anchor @anchor1 --issued {T1}"
    _one_clear_line(c(f"{init} --out", draft, expect=1), "exists; pass --force")
    assert draft.read_bytes() == before
    c(f"{init} --force --out", draft)
    assert draft.read_bytes() != before
    merged = c.copy("d3", tmp_path)
    _one_clear_line(c("merge @d3.draft.root4 --out", merged, expect=1), "exists; pass --force")
    assert merged.read_bytes() == (c / "d3").read_bytes()


def test_a_signed_draft_is_changed_only_with_force(ceremony: Ceremony, tmp_path: Path) -> None:
    c = ceremony
    signed = c.copy("d3.draft.root4", tmp_path)
    before = signed.read_bytes()
    run = c("directory suspend --principal FR.ncb-paris", signed, expect=1)
    _one_clear_line(run, "1 signature(s)", "--force")
    assert signed.read_bytes() == before
    c("directory suspend --principal FR.ncb-paris --force", signed)
    assert SignedDocument.decode(DIRECTORY_KIND, signed.read_bytes()).signatures == ()


@pytest.mark.req("ROT-5", "ROT-6")
def test_suspend_reinstate_and_revoke_a_key(ceremony: Ceremony, tmp_path: Path) -> None:
    c = ceremony
    draft = c.copy("d3.draft", tmp_path)

    def paris() -> dict[str, Any]:
        shown = json.loads(c("show --json", draft).out)
        entry: dict[str, Any] = next(e for e in shown["entries"] if e["id"] == "FR.ncb-paris")
        return entry

    c("directory suspend --principal FR.ncb-paris --since 2027-01-18T00:00:00Z", draft)
    run = c("directory suspend --principal FR.ncb-paris", draft, expect=1)
    _one_clear_line(run, "already suspended")
    key_id = read_keystore(c / "FR.ncb-paris.keys", PASSPHRASE).encryption_keys[0].key_id
    c(f"directory revoke --principal FR.ncb-paris --key {key_id.hex()}", draft)
    assert [s["state"] for s in paris()["status"]] == ["active", "suspended"]
    assert paris()["encryptionKeys"][0]["revoked"] is not None
    c("directory reinstate --principal FR.ncb-paris", draft)
    assert [s["state"] for s in paris()["status"]] == ["active", "suspended", "active"]
    run = c("directory revoke --principal FR.ncb-paris", draft, expect=1)
    _one_clear_line(run, "a new one must be later")  # reinstated at the draft's issue time


def _damage(change: Callable[[dict[str, Any]], object]) -> Callable[[dict[str, Any]], str]:
    def damaged(identity: dict[str, Any]) -> str:
        change(identity)
        return json.dumps(identity)

    return damaged


IDENTITY_DAMAGE: dict[str, tuple[Callable[[dict[str, Any]], str], str]] = {
    "not JSON": (lambda identity: "{not json", "malformed"),
    "another format": (_damage(lambda i: i.update(format="ncb-relay root key")), "malformed"),
    "a missing field": (_damage(lambda i: i.pop("rotation")), "malformed"),
    "an unknown field": (_damage(lambda i: i.update(extra=1)), "malformed"),
    "a short key": (_damage(lambda i: i["signingKey"].update(key="00")), "malformed"),
    "a wrong key id": (
        _damage(lambda i: i["encryptionKeys"][0].update(keyId="00" * 16)),
        "malformed",
    ),
    "a small-order key": (
        _damage(lambda i: i["encryptionKeys"][0].update(key="00" * 32)),
        "invalid-peer-key",
    ),
    "a forged endorsement": (
        _damage(lambda i: i["encryptionKeys"][0].update(endorsement="11" * 64)),
        "bad-signature",
    ),
}


@pytest.mark.req("ROT-4", "DIR-4")
@pytest.mark.parametrize("case", list(IDENTITY_DAMAGE))
def test_a_bad_identity_file_is_refused_and_the_draft_kept(
    ceremony: Ceremony, tmp_path: Path, case: str
) -> None:
    damage, code = IDENTITY_DAMAGE[case]
    draft, identity = tmp_path / "new.draft", tmp_path / "paris.json"
    ceremony(f"directory init --anchor @anchor1 --issued {T1} --out", draft)
    before = draft.read_bytes()
    identity.write_text(damage(json.loads((ceremony / "FR.ncb-paris.json").read_text())))
    run = ceremony("directory add --name Paris --identity", identity, draft, expect=1)
    _one_clear_line(run, f"({code})")
    assert draft.read_bytes() == before


def test_a_bad_root_key_file_is_refused(ceremony: Ceremony, tmp_path: Path) -> None:
    root = tmp_path / "root.json"
    value = json.loads((ceremony / "root1.json").read_text())
    root.write_text(json.dumps({**value, "name": " padded "}))
    out = tmp_path / "anchor.draft"
    run = ceremony("anchor create --threshold 1 --root", root, "--out", out, expect=1)
    _one_clear_line(run, f"{root}: ", "(malformed)")
    assert not out.exists()


def test_keys_that_start_before_the_draft_are_refused_clearly(
    ceremony: Ceremony, tmp_path: Path
) -> None:
    draft = ceremony.copy("d3.draft", tmp_path)
    run = ceremony("directory add --identity @FR.ncb-paris.json --name Paris", draft, expect=1)
    _one_clear_line(run, "before this draft's issue time", "--not-before")


def test_a_rotation_is_published_once(ceremony: Ceremony, tmp_path: Path) -> None:
    draft = ceremony.copy("d3.draft", tmp_path)  # already lists Seoul's rotation
    run = ceremony("directory rotate --identity @KR.ncb-seoul.rotation.json", draft, expect=1)
    _one_clear_line(run, "already listed")


# --- the command line itself ---------------------------------------------------------------


def _parsers(
    parser: argparse.ArgumentParser, path: str = "ncb-relay"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_command_and_option_explains_itself() -> None:
    seen = 0
    for path, parser in _parsers(_parser()):
        assert parser.description, f"{path} has no description"
        for action in parser._actions:
            assert action.help, f"{path} {action.option_strings or action.dest} has no help"
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, f"{path} {choice.dest} has no summary"
        seen += 1
    assert seen >= 25


@pytest.mark.parametrize(
    "command",
    [
        "anchor create --root r --threshold 2 --out a --issued '2027-01-15 08:00'",
        "anchor create --root r --threshold 2 --out a --issued 2027-01-15T08:00:00.5Z",
        "keys generate --keystore k --principal kr.seoul",
        "directory revoke d --principal KR.ncb-seoul --key abc",
        "keys rotate --keystore k --out o --encryption-only --new-keystore n",
        "keys rotate --keystore k --out o",
        "verify f --grace 'a week'",
        "root generate --keystore k --out o --name ' padded '",
    ],
)
def test_bad_arguments_are_usage_errors(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(shlex.split(command))
    assert exc.value.code == 2
    assert "usage: ncb-relay" in capsys.readouterr().err


def _console_script() -> str:
    beside = Path(sys.executable).with_name("ncb-relay")
    found = str(beside) if beside.exists() else shutil.which("ncb-relay")
    assert found, "the ncb-relay console script is not installed (pip install -e .)"
    return found


def test_the_installed_console_script_runs_the_commands(ceremony: Ceremony, tmp_path: Path) -> None:
    c = ceremony
    script = _console_script()
    anchors = ["--anchor", str(c / "anchor1"), "--anchor", str(c / "anchor2")]
    keystore = tmp_path / "JP.ncb-tokyo.keys"
    subprocess.run(
        [script, "keys", "generate", "--keystore", keystore, "--principal", "JP.ncb-tokyo",
         "--passphrase-env", PASS_ENV, "--kdf-profile", "interactive"],
        env={**os.environ, PASS_ENV: PASSPHRASE}, check=True, capture_output=True,
    )  # fmt: skip
    assert stat.S_IMODE(keystore.stat().st_mode) == 0o600
    assert read_keystore(keystore, PASSPHRASE).principal == "JP.ncb-tokyo"
    out = subprocess.run(
        [script, "verify", c / "d3", *anchors, "--now", T3_LATER, "--json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert json.loads(out.stdout)["serial"] == 3
    accepted = c.copy("accepted", tmp_path)
    refused = subprocess.run(
        [script, "verify", c / "d2", *anchors, "--accepted", accepted, "--now", T3_LATER],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert refused.returncode == 1
    assert refused.stdout == ""
    assert refused.stderr.count("\n") == 1
    assert "(rollback)" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert accepted.read_bytes() == (c / "d3").read_bytes()
