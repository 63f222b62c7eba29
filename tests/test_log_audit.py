"""The log auditor (ncb_relay.log_audit): an honest log passes, each misbehaviour has its code.

A log here is a list of served entries, the checkpoints the relay signed and a
relay that answers proof requests; each test hands the auditor an honest log
with one thing changed, as a misbehaving relay would serve it.
"""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pytest

from fixtures import seeded_rng
from ncb_relay import SigningKeyPair, UsageError, primitives
from ncb_relay import merkle as m
from ncb_relay.checkpoint import (
    Checkpoint,
    LogKey,
    NoteSignature,
    SignedNote,
    WitnessKey,
    cosign_checkpoint,
    parse_note,
    sign_checkpoint,
)
from ncb_relay.errors import RelayUnavailable
from ncb_relay.identity import SigningPublicKey
from ncb_relay.log_audit import (
    MAX_PROBLEMS,
    PROBLEM_CODES,
    AuditReport,
    LogAuditor,
    ServedEntry,
)

NAME = "XP.relay-lyon/log"
LOG_PAIR = SigningKeyPair(bytes([1]) * 32)
LOG = LogKey(NAME, LOG_PAIR.public_key)
OTHER_PAIR = SigningKeyPair(bytes([2]) * 32)
W_PAIRS = [SigningKeyPair(bytes([10 + i]) * 32) for i in range(2)]
WITNESSES = [WitnessKey(f"KR.ncb-{i}", p.public_key) for i, p in enumerate(W_PAIRS)]
HASHES = [bytes([i % 251, i // 251]) * 16 for i in range(45)]
SIZES = [1, 3, 8, 13, 20, 32, 45]
NOW = 1_800_000_000

Proof = list[bytes]


def entries(hashes: Sequence[bytes] = HASHES) -> list[ServedEntry]:
    return [
        ServedEntry(i, "directory" if i % 10 == 0 else "envelope", h) for i, h in enumerate(hashes)
    ]


def node_reader(hashes: Sequence[bytes]) -> m.NodeReader:
    leaves = [m.leaf_hash(h) for h in hashes]
    return m.nodes_from_leaves(lambda start, end: leaves[start:end])


def note(size: int, hashes: Sequence[bytes] = HASHES, *, pair: SigningKeyPair = LOG_PAIR) -> bytes:
    root = m.tree_root([m.leaf_hash(h) for h in hashes[:size]])
    return sign_checkpoint(
        Checkpoint(NAME, size, root), log=LogKey(NAME, pair.public_key), signer=pair
    )


@dataclass
class Relay:
    """What a relay serves; an honest one by default, each field open to tampering."""

    served: list[ServedEntry] = field(default_factory=entries)
    notes: list[bytes] = field(default_factory=lambda: [note(s) for s in SIZES])
    tree: list[bytes] = field(default_factory=lambda: list(HASHES))  # what its proofs come from
    inclusion: Callable[[int, int], Proof] | None = None
    consistency: Callable[[int, int], Proof] | None = None

    def prove_inclusion(self, index: int, size: int) -> Proof:
        if self.inclusion is not None:
            return self.inclusion(index, size)
        return m.inclusion_proof(index, size, node_reader(self.tree))

    def prove_consistency(self, old: int, new: int) -> Proof:
        if self.consistency is not None:
            return self.consistency(old, new)
        return m.consistency_proof(old, new, node_reader(self.tree))


def audit(
    relay: Relay,
    *,
    sample: int = 8,
    page: int = 7,
    witnesses: Sequence[WitnessKey] = (),
    threshold: int = 0,
    log_keys: Sequence[LogKey] = (LOG,),
    witness_valid_at: Callable[[WitnessKey, int], bool] | None = None,
) -> AuditReport:
    auditor = LogAuditor(
        log_keys=log_keys,
        witnesses=witnesses,
        threshold=threshold,
        witness_valid_at=witness_valid_at,
    )
    auditor.add_checkpoints(relay.notes[:2])  # checkpoints ahead of the entries, and behind
    for start in range(0, len(relay.served), page):
        auditor.add_entries(relay.served[start : start + page])
    auditor.add_checkpoints(relay.notes[2:])
    requests = auditor.proof_requests(seeded_rng(b"audit"), sample=sample)
    for index, size in requests.inclusion:
        auditor.check_inclusion(index, size, relay.prove_inclusion(index, size))
    for old, new in requests.consistency:
        auditor.check_consistency(old, new, relay.prove_consistency(old, new))
    report = auditor.finish()
    assert all(p.code in PROBLEM_CODES for p in report.problems)
    json.dumps(report.to_json())  # always renderable
    report.text()
    return report


def spoil_last_signature(data: bytes) -> bytes:
    parsed = parse_note(data)
    *kept, last = parsed.signatures
    flipped = bytes([last.signature[0] ^ 1]) + last.signature[1:]
    line = NoteSignature(last.name, last.key_id, flipped)
    return SignedNote(parsed.text, (*kept, line)).data


def codes(report: AuditReport) -> set[str]:
    return {p.code for p in report.problems}


@pytest.mark.req("LOG-31")
def test_an_honest_log_passes() -> None:
    report = audit(Relay())
    assert report.ok, report.text()
    assert report.size == 45
    assert report.root == m.tree_root([m.leaf_hash(h) for h in HASHES])
    assert report.entries == {"envelope": 40, "directory": 5}
    assert (report.checkpoints, report.checkpoints_checked) == (7, 7)
    assert report.inclusion_proofs >= 2
    assert report.consistency_proofs == 6  # every consecutive pair
    shown = report.to_json()
    assert (shown["ok"], shown["problems"]) == (True, [])
    assert report.text().startswith(f"log {NAME}: OK")


@pytest.mark.req("LOG-31")
def test_the_sample_is_drawn_from_the_rng_and_covers_first_and_last() -> None:
    auditor = LogAuditor(log_keys=[LOG])
    auditor.add_entries(entries())
    auditor.add_checkpoints([note(s) for s in SIZES])
    first = auditor.proof_requests(seeded_rng(b"one"), sample=5)
    assert first == auditor.proof_requests(seeded_rng(b"one"), sample=5)
    indices = [index for index, _ in first.inclusion]
    assert (indices[0], indices[-1]) == (0, 44)
    assert all(index < size and size in SIZES for index, size in first.inclusion)
    few = auditor.proof_requests(seeded_rng(b"one"), sample=2)
    assert len(few.consistency) <= 4  # first, last and up to two drawn
    assert (few.consistency[0], few.consistency[-1]) == ((1, 3), (32, 45))
    bare = auditor.proof_requests(seeded_rng(b"one"), sample=0).inclusion
    assert [index for index, _ in bare] == [0, 44]


@pytest.mark.req("LOG-31")
def test_a_missing_entry_stops_the_replay() -> None:
    relay = Relay()
    del relay.served[17]
    report = audit(relay)
    assert "entry-order" in codes(report)
    assert [p.index for p in report.problems if p.code == "entry-order"] == [17], "the index due"
    assert "checkpoint-unchecked" in codes(report)
    assert report.size == 17


@pytest.mark.req("LOG-31")
def test_an_entry_served_out_of_order_is_found() -> None:
    relay = Relay()
    relay.served[5], relay.served[6] = relay.served[6], relay.served[5]
    assert "entry-order" in codes(audit(relay))


@pytest.mark.req("LOG-31")
def test_two_entries_swapped_under_their_indices_break_the_roots() -> None:
    relay = Relay()
    swapped = list(HASHES)
    swapped[5], swapped[6] = swapped[6], swapped[5]
    relay.served = entries(swapped)
    report = audit(relay)
    problems = [p for p in report.problems if p.code == "checkpoint-root"]
    assert [p.size for p in problems] == [8, 13, 20, 32, 45]


@pytest.mark.req("LOG-31")
def test_an_entry_of_an_unknown_kind_is_refused() -> None:
    relay = Relay()
    relay.served[3] = ServedEntry(3, "other", HASHES[3])
    assert {"entry-invalid", "checkpoint-unchecked"} <= codes(audit(relay))


@pytest.mark.req("LOG-31")
def test_a_checkpoint_with_a_wrong_root_is_found() -> None:
    relay = Relay()
    forged = list(HASHES)
    forged[2] = bytes(32)
    relay.notes[3] = note(13, forged)  # signed by the log, over another history
    report = audit(relay)
    assert [p.size for p in report.problems if p.code == "checkpoint-root"] == [13]
    # the honest consistency proofs around it do not lead to its root
    assert "proof-invalid" in codes(report)


@pytest.mark.req("LOG-31")
def test_a_forged_signature_is_found() -> None:
    relay = Relay()
    relay.notes[2] = note(8, pair=OTHER_PAIR)  # not the log's key
    relay.notes[3] = spoil_last_signature(note(13))
    report = audit(relay)
    invalid = [p for p in report.problems if p.code == "checkpoint-invalid"]
    assert {p.error for p in invalid} == {"unknown-key", "bad-signature"}
    assert [p.size for p in invalid] == [8, 13], "each reported at the size it claims (LOG-31)"
    assert report.checkpoints_checked == 5


@pytest.mark.req("LOG-31")
def test_checkpoints_must_grow() -> None:
    relay = Relay()
    relay.notes[3], relay.notes[4] = relay.notes[4], relay.notes[3]
    relay.notes.append(note(45))
    report = audit(relay)
    assert [p.size for p in report.problems if p.code == "checkpoint-order"] == [13, 45]


@pytest.mark.req("LOG-31")
def test_a_checkpoint_beyond_the_entries_served_is_found() -> None:
    relay = Relay()
    relay.served = relay.served[:40]
    report = audit(relay)
    assert [p.size for p in report.problems if p.code == "entries-short"] == [45]


@pytest.mark.req("LOG-31")
def test_a_proof_that_does_not_verify_is_found() -> None:
    def bad_inclusion(index: int, size: int) -> Proof:
        proof = m.inclusion_proof(index, size, node_reader(HASHES))
        return proof[:-1] if proof else [bytes(32)]

    def bad_consistency(old: int, new: int) -> Proof:
        return [bytes(32)] * 3

    report = audit(Relay(inclusion=bad_inclusion, consistency=bad_consistency))
    invalid = [p for p in report.problems if p.code == "proof-invalid"]
    assert len(invalid) == report.inclusion_proofs + report.consistency_proofs
    assert {p.error for p in invalid} == {"invalid-proof"}


@pytest.mark.req("LOG-31")
def test_a_proof_that_verifies_but_is_not_the_one_computed_is_found() -> None:
    # the relay signs and proves one history but serves entries with one changed
    relay = Relay()
    changed = list(HASHES)
    changed[30] = bytes(32)
    relay.served = entries(changed)
    report = audit(relay, sample=40)
    assert "checkpoint-root" in codes(report)
    differs = [p for p in report.problems if p.code == "proof-differs"]
    assert differs
    assert all(p.index != 30 for p in differs)
    assert any(p.code == "proof-invalid" and p.index == 30 for p in report.problems)


@pytest.mark.req("LOG-31")
def test_witness_cosignatures_are_counted_and_checked() -> None:
    relay = Relay()
    relay.notes = [
        cosign_checkpoint(n, witness=WITNESSES[0], signer=W_PAIRS[0], now=NOW) for n in relay.notes
    ]
    relay.notes[-1] = cosign_checkpoint(
        relay.notes[-1], witness=WITNESSES[1], signer=W_PAIRS[1], now=NOW
    )
    report = audit(relay, witnesses=WITNESSES)
    assert report.ok
    assert report.cosignatures == {"KR.ncb-0": 7, "KR.ncb-1": 1}
    assert "KR.ncb-1: 1 checkpoint" in report.text()
    report = audit(relay, witnesses=WITNESSES, threshold=2)
    assert [p.size for p in report.problems if p.code == "witness-threshold"] == SIZES[:-1]
    relay.notes[0] = spoil_last_signature(relay.notes[0])  # KR.ncb-0's cosignature
    report = audit(relay, witnesses=WITNESSES)
    assert [(p.code, p.size, p.error) for p in report.problems] == [
        ("witness-invalid", 1, "bad-signature")
    ]
    assert report.checkpoints_checked == 7  # the log's signature still counts


@pytest.mark.req("LOG-31")
def test_checkpoints_signed_with_an_older_log_key_verify_with_it() -> None:
    relay = Relay()
    relay.notes[:3] = [note(s, pair=OTHER_PAIR) for s in SIZES[:3]]
    older = LogKey(NAME, OTHER_PAIR.public_key)
    assert audit(relay, log_keys=[older, LOG]).ok
    assert "checkpoint-invalid" in codes(audit(relay))


def test_a_fetch_that_failed_is_a_problem() -> None:
    auditor = LogAuditor(log_keys=[LOG])
    auditor.fetch_failed("GET /v1/log/entries", RelayUnavailable("cannot connect"))
    report = auditor.finish()
    assert [(p.code, p.error) for p in report.problems] == [("fetch-failed", "relay-unavailable")]
    assert "PROBLEMS FOUND" in report.text()


def test_entries_without_a_checkpoint_are_a_problem_an_empty_log_is_not() -> None:
    assert LogAuditor(log_keys=[LOG]).finish().ok
    auditor = LogAuditor(log_keys=[LOG])
    auditor.add_entries(entries()[:3])
    assert codes(auditor.finish()) == {"no-checkpoint"}


def test_problems_beyond_the_limit_are_counted() -> None:
    auditor = LogAuditor(log_keys=[LOG])
    for _ in range(MAX_PROBLEMS + 5):
        auditor.add_checkpoints([b"not a note"])
    report = auditor.finish()
    assert (len(report.problems), report.problems_omitted) == (MAX_PROBLEMS, 5)
    assert not report.ok
    assert "and 5 more" in report.text()


def test_misuse_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        LogAuditor(log_keys=[])
    with pytest.raises(UsageError):
        LogAuditor(log_keys=[LOG], witnesses=WITNESSES[:1], threshold=2)
    auditor = LogAuditor(log_keys=[LOG])
    auditor.add_entries(entries())
    auditor.add_checkpoints([note(8)])
    with pytest.raises(UsageError):
        auditor.check_inclusion(3, 9, [])  # no checkpoint of that size
    with pytest.raises(UsageError):
        auditor.check_consistency(8, 8, [])
    with pytest.raises(UsageError):
        auditor.proof_requests(seeded_rng(b"x"), sample=-1)


@pytest.mark.req("LOG-31")
def test_the_latest_checkpoint_must_be_the_listed_one() -> None:
    auditor = LogAuditor(log_keys=[LOG])
    auditor.add_entries(entries())
    auditor.add_checkpoints([note(s) for s in SIZES])
    auditor.check_latest(note(45))
    assert auditor.finish().ok
    forged = list(HASHES)
    forged[0] = bytes([255]) * 32
    for latest in (note(45, forged), note(44)):
        auditor = LogAuditor(log_keys=[LOG])
        auditor.add_entries(entries())
        auditor.add_checkpoints([note(s) for s in SIZES])
        auditor.check_latest(latest)
        assert codes(auditor.finish()) == {"latest-differs"}


def cosigned_relay() -> Relay:
    """An honest relay whose every checkpoint both witnesses cosigned at NOW."""
    relay = Relay()
    for pair, witness in zip(W_PAIRS, WITNESSES, strict=True):
        relay.notes = [
            cosign_checkpoint(n, witness=witness, signer=pair, now=NOW) for n in relay.notes
        ]
    return relay


@pytest.mark.req("LOG-31")
def test_each_signature_is_verified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    verified: list[bytes] = []
    original = SigningPublicKey.verify

    def counting(key: SigningPublicKey, message: bytes, signature: bytes) -> None:
        verified.append(signature)
        original(key, message, signature)

    relay = cosigned_relay()
    monkeypatch.setattr(SigningPublicKey, "verify", counting)
    report = audit(relay, witnesses=WITNESSES, threshold=2)
    assert report.ok, report.text()
    assert len(verified) == len(SIZES) * 3  # the log's signature and two cosignatures, each once
    assert len(set(verified)) == len(verified)


@pytest.mark.req("LOG-31")
def test_a_bad_cosignature_does_not_hide_the_good_ones() -> None:
    relay = cosigned_relay()
    relay.notes[-1] = spoil_last_signature(relay.notes[-1])  # KR.ncb-1's, on the last
    report = audit(relay, witnesses=WITNESSES)
    assert [(p.code, p.size) for p in report.problems] == [("witness-invalid", 45)]
    assert report.cosignatures == {"KR.ncb-0": 7, "KR.ncb-1": 6}


@pytest.mark.req("LOG-31")
def test_a_cosignature_by_a_key_not_valid_at_its_time_is_not_counted() -> None:
    relay = cosigned_relay()
    seen: list[tuple[str, int]] = []

    def valid_at(witness: WitnessKey, at: int) -> bool:
        seen.append((witness.name, at))
        return witness.name != "KR.ncb-1"  # revoked, suspended or outside its window at NOW

    report = audit(relay, witnesses=WITNESSES, threshold=1, witness_valid_at=valid_at)
    assert report.cosignatures == {"KR.ncb-0": 7}
    assert {p.code for p in report.problems} == {"witness-not-valid"}
    assert len(report.problems) == len(SIZES)
    assert set(seen) == {("KR.ncb-0", NOW), ("KR.ncb-1", NOW)}
    report = audit(
        relay, witnesses=WITNESSES, threshold=2, witness_valid_at=lambda w, _at: w == WITNESSES[0]
    )
    assert [p.size for p in report.problems if p.code == "witness-threshold"] == SIZES


@pytest.mark.req("LOG-31")
def test_the_latest_checkpoint_is_verified_before_its_size_is_used() -> None:
    auditor = LogAuditor(log_keys=[LOG])
    assert auditor.verify_latest(note(45)) == 45
    huge = Checkpoint(NAME, 2**62, bytes(32))
    forged = sign_checkpoint(huge, log=LogKey(NAME, OTHER_PAIR.public_key), signer=OTHER_PAIR)
    assert auditor.verify_latest(forged) is None
    assert auditor.verify_latest(b"\n".join([NAME.encode(), b"99999999", b"x"])) is None
    assert [p.code for p in auditor.finish().problems] == ["checkpoint-invalid"] * 2


def test_the_auditor_keeps_sizes_and_roots_not_the_notes() -> None:
    """A relay that pads every checkpoint to the largest note cannot grow what the audit holds."""
    count = 300
    hashes = [primitives.sha256(i.to_bytes(4, "big")) for i in range(count)]
    padding = tuple("x" * 1000 for _ in range(8))
    roots = [m.tree_root([m.leaf_hash(h) for h in hashes[:size]]) for size in range(count + 1)]
    notes = [
        sign_checkpoint(Checkpoint(NAME, size, roots[size], padding), log=LOG, signer=LOG_PAIR)
        for size in range(1, count + 1)
    ]
    assert sum(map(len, notes)) > 2_000_000
    auditor = LogAuditor(log_keys=[LOG])
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        auditor.add_checkpoints(notes[: count // 2])  # beyond the entries: pending
        auditor.add_entries([ServedEntry(i, "envelope", h) for i, h in enumerate(hashes)])
        auditor.add_checkpoints(notes[count // 2 :])
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    report = auditor.finish()
    assert report.ok, report.text()
    assert report.checkpoints_checked == count
    assert held < 400_000, held


@pytest.mark.req("LOG-31")
def test_a_cosignature_of_the_wrong_shape_is_invalid() -> None:
    relay = Relay()
    parsed = parse_note(relay.notes[-1])
    witness = WITNESSES[0]
    short = NoteSignature(witness.name, witness.key_id, bytes(8 + 63))
    late = NoteSignature(witness.name, witness.key_id, bytes([128]) + bytes(7 + 64))
    relay.notes[-1] = SignedNote(parsed.text, (*parsed.signatures, short, late)).data
    report = audit(relay, witnesses=WITNESSES)
    assert [(p.code, p.size, p.error) for p in report.problems] == [
        ("witness-invalid", 45, "bad-signature")
    ] * 2
    assert "wrong length" in report.problems[0].message
    assert "2**63" in report.problems[1].message
